/**
 * A stand-in for a tenant's gatekeeper, as far as `scripts/run smoke` can tell from outside the gateway: the real one
 * (components/identity/gatekeeper/) checks tokens against the issuer and is proven by its own integration test. This
 * one admits a single bearer token, known in advance, and forwards what it admits to Orthanc as its own Orthanc user;
 * anything else it refuses the way the gatekeeper does: a browser's GET without credentials is sent to the provider's
 * authorization endpoint with the tenant's client id and redirect URI, other requests get 401 with a Bearer challenge,
 * and any other Authorization header (the admin's HTTP Basic included) is an invalid token.
 */
import { createServer, request as httpRequest, IncomingMessage, ServerResponse } from "http";
import { Resources } from "./processes";

export interface GatekeeperStandInOptions {
    tenant: string;
    orthancPort: number;
    /** The Orthanc user the gatekeeper forwards as (the real one has a user of its own). */
    orthancUser: { user: string; password: string };
    /** The only token admitted. */
    token: string;
    signIn: { issuer: string; clientId: string; redirectUri: string };
}

export interface GatekeeperStandIn {
    readonly port: number;
    /** Every request: method, path and who it was (anonymous, token, or what the refused header was). */
    readonly requests: { method: string; path: string; who: "anonymous" | "token" | "refused"; status: number }[];
}

export async function startGatekeeperStandIn(resources: Resources, options: GatekeeperStandInOptions): Promise<GatekeeperStandIn> {
    const requests: GatekeeperStandIn["requests"] = [];
    const orthancAuthorization = `Basic ${Buffer.from(`${options.orthancUser.user}:${options.orthancUser.password}`).toString("base64")}`;
    const refuse = (response: ServerResponse, invalid: boolean) => {
        response.writeHead(401, { "WWW-Authenticate": `Bearer realm="${options.tenant}"${invalid ? ', error="invalid_token"' : ""}`, "Content-Type": "text/plain" });
        response.end("Sign-in required.");
    };
    const server = createServer((request: IncomingMessage, response: ServerResponse) => {
        const method = request.method ?? "GET";
        const url = request.url ?? "/";
        const record = (who: GatekeeperStandIn["requests"][number]["who"], status: number) => requests.push({ method, path: url.split("?")[0], who, status });
        const authorization = request.headers.authorization;
        if (authorization === `Bearer ${options.token}`) {
            const headers = { ...request.headers, authorization: orthancAuthorization };
            delete headers.host;
            const upstream = httpRequest({ host: "127.0.0.1", port: options.orthancPort, method, path: url, headers }, (answer) => {
                record("token", answer.statusCode ?? 0);
                response.writeHead(answer.statusCode ?? 502, answer.headers);
                answer.pipe(response);
            });
            upstream.on("error", () => {
                record("token", 502);
                response.writeHead(502).end();
            });
            request.pipe(upstream);
            return;
        }
        request.resume();
        if (authorization !== undefined) {
            record("refused", 401);
            return refuse(response, true);
        }
        if (method === "GET" && /text\/html/.test(String(request.headers.accept ?? ""))) {
            const target = new URL(`${options.signIn.issuer}/auth`);
            target.search = new URLSearchParams({ response_type: "code", client_id: options.signIn.clientId, redirect_uri: options.signIn.redirectUri, scope: "openid" }).toString();
            record("anonymous", 302);
            response.writeHead(302, { Location: target.toString() });
            return response.end();
        }
        record("anonymous", 401);
        refuse(response, false);
    });
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve());
    });
    resources.defer(
        () =>
            new Promise<void>((resolve) => {
                server.closeAllConnections();
                server.close(() => resolve());
            }),
    );
    const address = server.address();
    if (typeof address !== "object" || !address) throw new Error("the gatekeeper stand-in has no address");
    return { port: address.port, requests };
}
