/**
 * korthweb's policy pack: the platform's security rules, all mandatory.
 *
 *     pulumi preview --policy-pack policy        (from the repository root, after `npm ci` there)
 *
 * The rules are in rules.ts (pure functions, unit-tested in tests/policy.test.ts); policies.ts wraps them.
 */
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("korthweb", { enforcementLevel: "mandatory", policies });
