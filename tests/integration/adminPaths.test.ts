/**
 * What a replica with the rendered configuration answers on the paths the gateway refuses (issue 18, item 4), on the
 * real Orthanc of the suite's root (the image's 1.13.0 with sid's root). The gateway's DENY itself is Istio's and is
 * modelled (tests/upstream/authorizationPolicy.ts, tests/tenant.test.ts); this shows what Orthanc does on its own
 * behind it: WebDAV and Lua over REST are refused by the configuration, and the paths the DENY lists are reached by
 * their spelling variants, which is why the mesh merges slashes and decodes %2F before matching.
 */
import assert from "assert";
import { Replica } from "./support/orthanc";
import { assertPrerequisites } from "./support/prerequisites";
import { Resources } from "./support/processes";
import { startTenantStack } from "./support/stack";

describe("administrative paths on a replica with the rendered configuration (real Orthanc)", function () {
    const suite = new Resources();
    let replica: Replica;

    before(async function () {
        assertPrerequisites();
        const stack = await startTenantStack(suite);
        replica = await stack.startReplica(suite, "admin-paths");
    });
    after(() => suite.release());

    it("states WebDAV, Lua over REST and file-system writes off in the configuration it runs with", () => {
        assert.equal(replica.config.WebDavEnabled, false);
        assert.equal(replica.config.ExecuteLuaEnabled, false);
        assert.equal(replica.config.RestApiWriteToFileSystemEnabled, false);
    });

    it("refuses WebDAV to the admin: 404 on /webdav/, also for PROPFIND", async () => {
        for (const method of ["GET", "PROPFIND"]) {
            const response = await replica.request("/webdav/", { method });
            assert.equal(response.status, 404, `${method} /webdav/`);
        }
    });

    it("refuses Lua over REST to the admin: 403 on POST /tools/execute-script", async () => {
        const response = await replica.request("/tools/execute-script", { method: "POST", body: 'print("x")' });
        assert.equal(response.status, 403);
    });

    it("routes the spelling variants a path-based DENY must normalize away to the same handler (so the mesh must merge slashes and decode %2F)", async () => {
        for (const path of ["/tools/log-level", "//tools/log-level", "/tools//log-level", "/tools%2Flog-level", "/tools/log-level/", "/tools/log-level?x=1"]) {
            const response = await replica.request(path);
            assert.equal(response.status, 200, path);
        }
    });

    it("changes its in-memory modalities through PUT /modalities/<name> (what the gateway's DENY takes away)", async () => {
        const put = await replica.request("/modalities/added-over-rest", { method: "PUT", body: JSON.stringify({ AET: "EVIL", Host: "192.0.2.1", Port: 104 }) });
        assert.equal(put.status, 200);
        assert.ok((await replica.getJson<string[]>("/modalities")).includes("added-over-rest"));
    });
});
