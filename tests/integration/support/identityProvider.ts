/**
 * A tenant's identity provider for the suite: npm's `oidc-provider` (a certified OpenID Provider), served over HTTPS
 * with a certificate of the test root, with users in groups, a confidential web client (authorization code flow with
 * PKCE) and API clients (client credentials, JWT access tokens for a resource indicator, RFC 8707 / RFC 9068).
 *
 * Its sign-in pages are oidc-provider's development interactions (a login form that accepts any password, then a
 * consent page): what a site's provider would check at sign-in (passwords, MFA) is not the gatekeeper's business; what
 * it issues (discovery, JWKS, codes, ID tokens, UserInfo, access tokens) is oidc-provider's own.
 */
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from "crypto";
import { once } from "events";
import { createServer } from "https";
import { webRequest } from "./dicomWeb";
import { freePort, Resources } from "./processes";

export interface TestUser {
    name: string;
    groups: string[];
}

export interface TestIdentityProviderOptions {
    tls: { keyPem: string; certPem: string; caPem: string };
    users: Record<string, TestUser>;
    webClient?: { clientId: string; secret: string; redirectUri: string };
    apiClients: { clientId: string; secret: string }[];
    /** Resource indicators (token audiences) the API clients may ask for. */
    resources: string[];
}

export interface TestIdentityProvider {
    readonly issuer: string;
    readonly port: number;
    /** A client-credentials access token (JWT, ES256) for `resource`. */
    clientToken(client: { clientId: string; secret: string }, resource: string): Promise<string>;
    /** A token signed with the provider's own current key, with these claims (what the provider would sign, e.g. long expired). */
    signWithProviderKey(claims: Record<string, unknown>): string;
    /** Closes its port and every connection, as a provider that went down (`resources` would at release). */
    stop(): Promise<void>;
}

/** Starts the provider on a free port of 127.0.0.1, as `https://localhost:<port>` (released with `resources`). */
export async function startIdentityProvider(resources: Resources, options: TestIdentityProviderOptions): Promise<TestIdentityProvider> {
    // oidc-provider is ESM only; Node 24 loads it through require() here, as ts-node compiles this file to CommonJS.
    const moduleName = "oidc-provider";
    const { default: Provider, errors } = (await import(moduleName)) as {
        default: new (issuer: string, configuration: Record<string, unknown>) => { callback(): (...args: unknown[]) => void };
        errors: { InvalidTarget: new () => Error };
    };
    const port = await freePort();
    const issuer = `https://localhost:${port}`;
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const ecKid = `ec-${randomBytes(4).toString("hex")}`;
    const privateJwk = (key: KeyObject, kid: string) => ({ ...(key.export({ format: "jwk" }) as Record<string, unknown>), kid, use: "sig" });
    const clients: Record<string, unknown>[] = options.apiClients.map((client) => ({
        client_id: client.clientId,
        client_secret: client.secret,
        grant_types: ["client_credentials"],
        response_types: [],
        redirect_uris: [],
    }));
    if (options.webClient) {
        clients.push({
            client_id: options.webClient.clientId,
            client_secret: options.webClient.secret,
            grant_types: ["authorization_code"],
            response_types: ["code"],
            redirect_uris: [options.webClient.redirectUri],
            token_endpoint_auth_method: "client_secret_basic",
        });
    }
    const provider = new Provider(issuer, {
        clients,
        jwks: { keys: [privateJwk(rsa.privateKey, `rsa-${randomBytes(4).toString("hex")}`), privateJwk(ec.privateKey, ecKid)] },
        cookies: { keys: [randomBytes(32).toString("base64url")] },
        findAccount: async (_ctx: unknown, id: string) => {
            const user = options.users[id];
            return user ? { accountId: id, claims: async () => ({ sub: id, name: user.name, groups: user.groups }) } : undefined;
        },
        claims: { openid: ["sub"], profile: ["name"], groups: ["groups"] },
        scopes: ["openid", "profile", "groups"],
        ttl: { AccessToken: 600, AuthorizationCode: 60, ClientCredentials: 600, Grant: 600, IdToken: 600, Interaction: 600, Session: 600 },
        features: {
            devInteractions: { enabled: true },
            clientCredentials: { enabled: true },
            resourceIndicators: {
                enabled: true,
                defaultResource: async () => undefined,
                useGrantedResource: async () => false,
                getResourceServerInfo: async (_ctx: unknown, indicator: string) => {
                    if (!options.resources.includes(indicator)) throw new errors.InvalidTarget();
                    return { scope: "dicomweb", audience: indicator, accessTokenTTL: 600, accessTokenFormat: "jwt", jwt: { sign: { alg: "ES256" } } };
                },
            },
        },
    });
    const server = createServer({ key: options.tls.keyPem, cert: options.tls.certPem }, provider.callback() as never);
    server.listen(port, "127.0.0.1");
    await once(server, "listening");
    let stopped: Promise<void> | undefined;
    const stop = () =>
        (stopped ??= new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
        }));
    resources.defer(stop);
    const target = { port, credentials: null, tls: { ca: options.tls.caPem, host: "localhost" } };
    return {
        issuer,
        port,
        stop,
        clientToken: async (client, resource) => {
            const answer = await webRequest(target, "/token", {
                method: "POST",
                headers: {
                    Authorization: `Basic ${Buffer.from(`${client.clientId}:${client.secret}`).toString("base64")}`,
                    "Content-Type": "application/x-www-form-urlencoded",
                },
                body: Buffer.from(new URLSearchParams({ grant_type: "client_credentials", resource, scope: "dicomweb" }).toString()),
            });
            if (answer.status !== 200) throw new Error(`client credentials for ${client.clientId}: HTTP ${answer.status} ${answer.body.toString()}`);
            return (JSON.parse(answer.body.toString()) as { access_token: string }).access_token;
        },
        signWithProviderKey: (claims) => {
            const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
            const body = `${encode({ alg: "ES256", typ: "at+jwt", kid: ecKid })}.${encode({ iss: issuer, ...claims })}`;
            return `${body}.${sign("sha256", Buffer.from(body), { key: ec.privateKey, dsaEncoding: "ieee-p1363" }).toString("base64url")}`;
        },
    };
}
