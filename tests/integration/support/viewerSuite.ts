/**
 * Where a suite that drives a viewer in Chromium starts (viewer.test.ts, identity.test.ts): the real stack's and the
 * viewer's prerequisites checked, and the test stack's first tenant with its names.
 */
import { StackConfig, TenantConfig } from "../../../components/config/schema";
import { tenantNames, TenantNames } from "../../../components/naming/tenantNames";
import { assertPrerequisites } from "./prerequisites";
import { testStackConfig } from "./stack";
import { assertViewerPrerequisites } from "./viewerApp";

export function viewerSuiteTenant(): { config: StackConfig; tenant: TenantConfig; names: TenantNames } {
    assertPrerequisites();
    assertViewerPrerequisites();
    const config = testStackConfig();
    const tenant = config.tenants[0];
    return { config, tenant, names: tenantNames(tenant.name, config.domain) };
}
