// Policies that quietly allow everything: what an AgentPolicy opens up that an administrator may
// mean but should see said out loud. The API server warns about the same when the policy is applied
// (the ValidatingAdmissionPolicy paddock-policy-warnings, with validationActions [Warn]); this pure
// check is for the policy's status condition.
#pragma once

#include <string>
#include <vector>

#include "controllers/api.h"

namespace paddock::controllers {

struct PolicyFinding {
  std::string field;    // e.g. spec.egress[0].cidr
  std::string message;  // what it allows and what to do, naming the field
};

// In order of the policy's fields: egress to every address (0.0.0.0/0, ::/0), egress to the cloud
// metadata address (only possible with spec.allowCloudMetadataEgress), approvers that include
// every user or service account (system:authenticated, system:unauthenticated,
// system:serviceaccounts[:NS], system:anonymous), an image allow-list entry of "*" or "**", and
// no spec.repositories (any Git host). Empty when the policy allows none of these.
std::vector<PolicyFinding> permissivePolicyFindings(const AgentPolicy& policy);

// Does the CIDR contain 169.254.169.254 or fd00:ec2::254? False for text that is not a CIDR.
bool cidrContainsCloudMetadata(const std::string& cidr);

}  // namespace paddock::controllers
