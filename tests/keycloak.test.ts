/**
 * The in-cluster Keycloak (components/identity/keycloak/): the realms it imports, and, on the local and dev stacks as
 * rendered, what Keycloak would make of them (tests/upstream/keycloak.ts) together with the gateway's route, the mesh's
 * policies and the gatekeeper's configuration. Keycloak itself does not run here.
 */
import { strict as assert } from "assert";
import { parse } from "yaml";
import { parseStackConfig } from "../components/config/load";
import { IdentityConfig } from "../components/config/schema";
import { keycloakPaths, keycloakPodLabels, keycloakPorts, keycloakServiceHost, realmPathPrefixes } from "../components/identity/keycloak/names";
import { administratorGroups, realmGroups, realmJson, realmRepresentation, RealmSecrets } from "../components/identity/keycloak/realm";
import { realmImportDirectory } from "../components/identity/keycloak/keycloak";
import { gatekeeperSecretEnv } from "../components/identity/contract";
import { tenantNames, tenantWebUrl } from "../components/naming/tenantNames";
import { isSecretValue, plain } from "./support/mocks";
import { kubernetesObjects, parsedStackFile, releases, renderStack, RenderedStack } from "./support/stacks";
import { authorizationAllows } from "./upstream/authorizationPolicy";
import { discoveryDocument, importedRealms, importedText, KeycloakServerSettings, keycloakxRelease, keycloakxServicePorts } from "./upstream/keycloak";

const names = tenantNames("bhs", "example.org");
// A NodePort gateway's address: the port is part of every URL the browser is sent to.
const webUrl = tenantWebUrl(names, "NodePort", { https: 30443 });
const secrets: RealmSecrets = { webClientSecret: "web-secret", apiClientSecrets: { ris: "ris-secret" }, administratorPassword: "first-password" };

function identityOf(extra: Record<string, unknown> = {}): IdentityConfig {
    return parseStackConfig({
        domain: "example.org",
        kubernetes: { apiServerAddresses: ["10.0.0.1/32"] },
        ingress: { serviceType: "ClusterIP" },
        tenants: [{ name: "bhs", displayName: "Beaverdale", identity: { keycloak: {}, ...extra } }],
    }).tenants[0].identity!;
}

describe("the in-cluster Keycloak's realm of a tenant", () => {
    const identity = identityOf({ apiClients: [{ clientId: "ris", role: "clinician" }] });
    const realm = realmRepresentation({ tenant: "bhs", displayName: "Beaverdale", webUrl, identity, administrator: "administrator" }, secrets) as any;

    it("has a group for every group a role is granted by, and puts the first administrator in the admin role's", () => {
        assert.deepEqual(realm.groups.map((g: any) => g.name), ["orthanc-administrators", "orthanc-auditors", "orthanc-clinicians", "orthanc-technologists"]);
        assert.deepEqual(realmGroups(identity), realm.groups.map((g: any) => g.name));
        const [admin] = realm.users;
        assert.deepEqual(admin.groups, administratorGroups(identity).map((g) => `/${g}`));
        assert.deepEqual(admin.groups, ["/orthanc-administrators"]);
        // Her first password is temporary, and she enrols a second factor.
        assert.deepEqual(admin.credentials, [{ type: "password", value: "first-password", temporary: true }]);
        assert.deepEqual(admin.requiredActions, ["CONFIGURE_TOTP"]);
        assert.deepEqual(admin.clientRoles, { "realm-management": ["realm-admin"] });
    });

    it("signs users in with a confidential web client: code flow with PKCE, to the tenant's callback only, groups and audience in its tokens", () => {
        const web = realm.clients.find((c: any) => c.clientId === "orthanc");
        assert.equal(web.publicClient, false, "a client that leaves publicClient out becomes public (OIDCLoginProtocolFactory)");
        assert.equal(web.secret, "web-secret");
        assert.deepEqual([web.standardFlowEnabled, web.implicitFlowEnabled, web.directAccessGrantsEnabled, web.serviceAccountsEnabled], [true, false, false, false]);
        assert.deepEqual(web.redirectUris, [`https://${names.webHost}:30443/oauth2/callback`]);
        assert.equal(web.attributes["pkce.code.challenge.method"], "S256");
        const groups = web.protocolMappers.find((m: any) => m.protocolMapper === "oidc-group-membership-mapper");
        assert.deepEqual([groups.config["claim.name"], groups.config["full.path"], groups.config["id.token.claim"]], ["groups", "false", "true"]);
        const audience = web.protocolMappers.find((m: any) => m.protocolMapper === "oidc-audience-mapper");
        assert.equal(audience.config["included.client.audience"], "orthanc");
    });

    it("gives each API client client credentials only, and the web client's audience the gatekeeper requires", () => {
        const ris = realm.clients.find((c: any) => c.clientId === "ris");
        assert.deepEqual([ris.publicClient, ris.standardFlowEnabled, ris.serviceAccountsEnabled, ris.directAccessGrantsEnabled], [false, false, true, false]);
        assert.equal(ris.secret, "ris-secret");
        assert.equal(ris.protocolMappers[0].config["included.client.audience"], "orthanc");
        assert.throws(() => realmRepresentation({ tenant: "bhs", displayName: "B", webUrl, identity, administrator: "a" }, { ...secrets, apiClientSecrets: {} }), /no generated secret for the API clients ris/);
    });

    it("serves the realm under the tenant's own host, with brute-force protection and stored sign-in events", () => {
        assert.equal(realm.attributes.frontendUrl, `https://${names.webHost}:30443${keycloakPaths.relativePath}`);
        assert.equal(realm.bruteForceProtected, true);
        assert.equal(realm.permanentLockout, false);
        assert.equal(realm.eventsEnabled, true);
        assert.deepEqual(realm.eventsListeners, ["jboss-logging"]);
        assert.equal(realm.registrationAllowed, false);
        assert.equal(realm.ssoSessionMaxLifespan, identity.sessionTtlSeconds);
    });

    it("refuses a realm that Keycloak's import would fill with its own environment (its bootstrap password)", () => {
        const input = { tenant: "bhs", displayName: "${KC_BOOTSTRAP_ADMIN_PASSWORD}", webUrl, identity, administrator: "administrator" };
        // What the import would have done: the model replaces it.
        const unguarded = JSON.stringify(realmRepresentation(input, secrets));
        assert.match(importedText(unguarded, { KC_BOOTSTRAP_ADMIN_PASSWORD: "s3cret" }), /"displayName":"s3cret"/);
        assert.throws(() => realmJson(input, secrets), /tenants\.bhs: the realm would hold \$\{KC_BOOTSTRAP_ADMIN_PASSWORD\}/);
        assert.doesNotThrow(() => realmJson({ ...input, displayName: "Beaverdale $5 {x}" }, secrets));
    });

    it("keeps realm paths apart: one tenant's prefixes never match another's", () => {
        for (const prefix of realmPathPrefixes("bhs").filter((p) => p.includes("bhs"))) {
            assert.ok(!`/keycloak/realms/bhs2/protocol/openid-connect/auth`.startsWith(prefix), prefix);
        }
        assert.deepEqual(importedRealms(new Set(["bhs"]), [{ realm: "bhs" }, { realm: "mhr" }]), ["mhr"], "an existing realm is never updated by the import");
    });
});

for (const stack of ["local", "dev"] as const) {
    describe(`the in-cluster Keycloak on stack ${stack}`, () => {
        let rendered: RenderedStack;
        before(async () => {
            rendered = await renderStack(stack);
        });
        const config = parsedStackFile(stack);
        const keycloakTenants = config.tenants.filter((t) => t.identity?.keycloak);
        const object = (kind: string, namespace: string, name: string) =>
            kubernetesObjects(rendered).find((r) => r.type.endsWith(`:${kind}`) && r.inputs.metadata?.namespace === namespace && r.inputs.metadata?.name === name);
        const values = () => releases(rendered).find((r) => r.inputs.name === "keycloak")!.inputs.values;
        const server = (): KeycloakServerSettings => {
            const env = parse(values().extraEnv) as { name: string; value?: string }[];
            const value = (name: string) => env.find((e) => e.name === name)?.value;
            return { hostname: value("KC_HOSTNAME")!, backchannelDynamic: value("KC_HOSTNAME_BACKCHANNEL_DYNAMIC") === "true", relativePath: values().http.relativePath };
        };

        it("signs some tenants in through it", () => {
            assert.ok(keycloakTenants.length > 0);
        });

        it("selects Keycloak's pods and Service by the labels and names the chart gives the release (walls, route, backchannel)", () => {
            const release = releases(rendered).find((r) => r.inputs.name === "keycloak")!;
            const chart = keycloakxRelease(release.inputs.name, release.inputs.values);
            assert.deepEqual(chart.podLabels, { ...keycloakPodLabels });
            assert.equal(`${chart.httpService}.${release.inputs.namespace}.svc.cluster.local`, keycloakServiceHost);
            // Without the override the chart would name everything keycloak-keycloakx: the model has teeth.
            assert.equal(keycloakxRelease("keycloak", {}).httpService, "keycloak-keycloakx-http");
        });

        it("starts Keycloak importing the realm files, mounted where the import reads, from a Secret", () => {
            assert.deepEqual(values().args, ["start", "--import-realm"]);
            const mounts = parse(values().extraVolumeMounts) as any[];
            assert.deepEqual(mounts, [{ name: "realms", mountPath: realmImportDirectory, readOnly: true }]);
            const realms = object("Secret", "keycloak", "keycloak-realms")!;
            assert.ok(isSecretValue(realms.inputs.stringData) || Object.values(realms.inputs.stringData).every(isSecretValue));
            assert.deepEqual(Object.keys(plain(realms.inputs.stringData)).sort(), keycloakTenants.map((t) => `${t.name}-realm.json`).sort());
            // No https port for the mesh to take for TLS; the gateway's route and the gatekeeper use `http` on 80.
            assert.deepEqual(keycloakxServicePorts(values()), [
                { name: "http-internal", port: 9000 },
                { name: "http", port: keycloakPorts.service },
            ]);
            assert.equal(keycloakxServicePorts({}).at(-1)!.name, "https", "the chart's default has one");
        });

        it("gives each gatekeeper a discovery document that names its issuer, with keys and tokens inside the mesh and the sign-in page on the tenant's host", () => {
            for (const tenant of keycloakTenants) {
                const tenantNamesOf = tenantNames(tenant.name, config.domain);
                const gatekeeper = JSON.parse(object("ConfigMap", tenantNamesOf.namespace, "gatekeeper")!.inputs.data["config.json"]);
                const realm = JSON.parse(plain(object("Secret", "keycloak", "keycloak-realms")!.inputs.stringData)[`${tenant.name}-realm.json`]);
                const document = discoveryDocument(server(), realm, gatekeeper.oidc.discoveryUrl);
                // The gatekeeper's check (IssuerKeys.metadata) and every token's iss.
                assert.equal(document.issuer, gatekeeper.oidc.issuer);
                for (const endpoint of [document.token_endpoint, document.jwks_uri]) {
                    assert.equal(new URL(endpoint).host, keycloakServiceHost, endpoint);
                }
                const signIn = new URL(document.authorization_endpoint);
                assert.equal(signIn.hostname, tenantNamesOf.webHost);
                assert.equal(signIn.origin, new URL(gatekeeper.publicUrl).origin, "the sign-in page on the origin the gatekeeper serves");
                // The tenant's gateway routes the sign-in page to Keycloak, before the gatekeeper's catch-all.
                const route = object("VirtualService", tenantNamesOf.gatewayNamespace, "web")!.inputs.spec.http[0];
                assert.ok(route.match.some((m: any) => signIn.pathname.startsWith(m.uri.prefix)));
                assert.equal(route.route[0].destination.host, keycloakServiceHost);
                assert.equal(route.route[0].destination.port.number, keycloakPorts.service);
                // The gatekeeper's secret is the realm's web client's.
                const secret = plain(object("Secret", tenantNamesOf.namespace, "gatekeeper")!.inputs.stringData);
                assert.equal(secret[gatekeeperSecretEnv.oidcClientSecret], realm.clients.find((c: any) => c.clientId === gatekeeper.oidc.clientId).secret);
                assert.equal(gatekeeper.oidc.groupsClaim, realm.clients[0].protocolMappers[0].config["claim.name"]);
            }
        });

        it("admits each tenant's gateway to its own realm and its gatekeeper to its own tokens, and nobody else", () => {
            const policies = kubernetesObjects(rendered)
                .filter((r) => r.type.endsWith(":AuthorizationPolicy") && r.inputs.metadata.namespace === "keycloak")
                .map((r) => r.inputs.spec);
            assert.ok(policies.some((p) => p.selector === undefined && p.rules === undefined), "an allow-nothing policy");
            const everyTenant = config.tenants.map((t) => t.name);
            // The mesh's path normalization, as rendered (istiod's meshConfig): what the policies see.
            const normalization = releases(rendered).find((r) => r.inputs.name === "istiod")!.inputs.values.meshConfig.pathNormalization.normalization;
            for (const tenant of keycloakTenants) {
                const own = tenantNames(tenant.name, config.domain);
                const request = (principalNamespace: string, account: string, path: string) => ({
                    method: "GET",
                    path,
                    port: keycloakPorts.container,
                    principal: `cluster.local/ns/${principalNamespace}/sa/${account}`,
                    namespace: principalNamespace,
                });
                const signIn = `/keycloak/realms/${tenant.name}/protocol/openid-connect/auth?client_id=orthanc`;
                const token = `/keycloak/realms/${tenant.name}/protocol/openid-connect/token`;
                const allows = (r: ReturnType<typeof request>) => authorizationAllows(policies, { ...keycloakPodLabels }, r, normalization);
                assert.ok(allows(request(own.gatewayNamespace, own.gatewayRelease, signIn)), `${tenant.name}'s gateway to its sign-in page`);
                assert.ok(allows(request(own.namespace, "gatekeeper", token)), `${tenant.name}'s gatekeeper to its token endpoint`);
                assert.ok(!allows(request(own.gatewayNamespace, own.gatewayRelease, "/keycloak/admin/master/console/")), "the master realm is the port-forward's");
                assert.ok(!allows(request(own.gatewayNamespace, own.gatewayRelease, `/keycloak/realms/${tenant.name}/../master/protocol/openid-connect/auth`)), "no way out of the realm by dot segments");
                assert.ok(!allows(request(own.gatewayNamespace, own.gatewayRelease, `/keycloak/realms/${tenant.name}/..%2Fmaster/protocol/openid-connect/auth`)), "nor by an escaped slash");
                for (const other of everyTenant.filter((t) => t !== tenant.name)) {
                    const them = tenantNames(other, config.domain);
                    assert.ok(!allows(request(them.gatewayNamespace, them.gatewayRelease, signIn)), `${other}'s gateway to ${tenant.name}'s realm`);
                    assert.ok(!allows(request(them.namespace, "gatekeeper", token)), `${other}'s gatekeeper to ${tenant.name}'s tokens`);
                }
            }
        });

        it("exports the first administrators' passwords and the API clients' secrets as secrets, equal to the realm files'", () => {
            const output = rendered.outputs.identityProviders;
            assert.equal(output.secret, true, "the whole output is secret");
            const providers = output.value;
            for (const tenant of keycloakTenants) {
                const realm = JSON.parse(plain(object("Secret", "keycloak", "keycloak-realms")!.inputs.stringData)[`${tenant.name}-realm.json`]);
                const exported = providers.realms[tenant.name];
                assert.equal(exported.administratorPassword, realm.users[0].credentials[0].value);
                assert.equal(exported.administrator, realm.users[0].username);
                const webUrlOf = tenantWebUrl(tenantNames(tenant.name, config.domain), config.ingress.serviceType, tenant.nodePorts);
                assert.equal(exported.issuer, `${webUrlOf}/keycloak/realms/${tenant.name}`);
                // Where the tenant's people type its address: on the local stack, the node port.
                assert.equal(new URL(exported.issuer).port, stack === "local" ? String(tenant.nodePorts!.https) : "");
            }
            assert.ok(providers.keycloakAdministrator.password.length >= 32);
        });
    });
}
