// Entry point of the policy pack the Pulumi CLI runs (`--policy-pack infra/policy-pack`).
// Only the CLI may load this file: `new PolicyPack()` serves the CLI's gRPC analyzer protocol.
// The rules, and their tests, are in infra/policies/.

import { PolicyPack } from "@pulumi/policy";
import { securityPolicies } from "../policies/security.ts";

new PolicyPack("logarchive-security", { policies: securityPolicies });
