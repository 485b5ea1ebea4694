#include "controllers/policy_checks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

namespace paddock::controllers {
namespace {

AgentPolicy narrow() {
  AgentPolicy p;
  p.name = "payments";
  p.egress = {{"140.82.112.0/20", "", {443}}, {"", "api.anthropic.com", {443}}};
  p.allowed_images = {"registry.example.com/payments/*"};
  StageSpec pr;
  pr.name = "pr";
  pr.approver_groups = {"payments-leads"};
  pr.approver_users = {"carol"};
  p.stages = {pr};
  p.repositories = {{"github.com", {"acme"}}};
  return p;
}

std::vector<std::string> fields(const std::vector<PolicyFinding>& findings) {
  std::vector<std::string> out;
  for (const auto& f : findings) out.push_back(f.field);
  return out;
}

TEST(PermissivePolicyFindings, ANarrowPolicyHasNone) { EXPECT_TRUE(permissivePolicyFindings(narrow()).empty()); }

TEST(PermissivePolicyFindings, NamesEachFieldThatAllowsEverything) {
  struct Case { const char* name; std::function<void(AgentPolicy&)> change; std::vector<std::string> fields; const char* message; } cases[] = {
      {"egress to every IPv4 address", [](AgentPolicy& p) { p.egress.push_back({"0.0.0.0/0", "", {443}}); },
       {"spec.egress[2].cidr", "spec.egress[2].cidr"}, "0.0.0.0/0 allows run pods to reach every address"},
      {"egress to every IPv6 address", [](AgentPolicy& p) { p.egress.push_back({"::/0", "", {443}}); },
       {"spec.egress[2].cidr", "spec.egress[2].cidr"}, "::/0 allows run pods to reach every address"},
      {"egress to the metadata address", [](AgentPolicy& p) { p.egress[0].cidr = "169.254.0.0/16"; },
       {"spec.egress[0].cidr"}, "reaches the cloud metadata address"},
      {"egress to the IPv6 metadata address", [](AgentPolicy& p) { p.egress[0].cidr = "fd00:ec2::/32"; },
       {"spec.egress[0].cidr"}, "reaches the cloud metadata address"},
      {"every authenticated user approves", [](AgentPolicy& p) { p.stages[0].approver_groups.push_back("system:authenticated"); },
       {"spec.stages[0].approval.approvers.groups"}, "lists system:authenticated"},
      {"anonymous approves", [](AgentPolicy& p) { p.stages[0].approver_groups = {"system:unauthenticated"}; },
       {"spec.stages[0].approval.approvers.groups"}, "system:unauthenticated"},
      {"every service account approves", [](AgentPolicy& p) { p.stages[0].approver_groups = {"system:serviceaccounts"}; },
       {"spec.stages[0].approval.approvers.groups"}, "system:serviceaccounts"},
      {"a namespace's service accounts approve", [](AgentPolicy& p) { p.stages[0].approver_groups = {"system:serviceaccounts:ci"}; },
       {"spec.stages[0].approval.approvers.groups"}, "system:serviceaccounts:ci"},
      {"system:anonymous approves", [](AgentPolicy& p) { p.stages[0].approver_users = {"system:anonymous"}; },
       {"spec.stages[0].approval.approvers.users"}, "system:anonymous"},
      {"every image", [](AgentPolicy& p) { p.allowed_images.push_back("*"); }, {"spec.images.allowed[1]"},
       "allows every image"},
      {"every image, any depth", [](AgentPolicy& p) { p.allowed_images = {"**"}; }, {"spec.images.allowed[0]"},
       "allows every image"},
      {"any Git host", [](AgentPolicy& p) { p.repositories.clear(); }, {"spec.repositories"}, "any Git host"},
  };
  for (const auto& c : cases) {
    auto p = narrow();
    c.change(p);
    auto found = permissivePolicyFindings(p);
    EXPECT_EQ(fields(found), c.fields) << c.name;
    ASSERT_FALSE(found.empty()) << c.name;
    EXPECT_TRUE(std::any_of(found.begin(), found.end(), [&](const PolicyFinding& f) { return f.message.find(c.message) != std::string::npos; }))
        << c.name << ": " << found.front().message;
    EXPECT_EQ(found.front().message.rfind(found.front().field, 0), 0u) << "the message starts with the field: " << found.front().message;
  }
}

TEST(CloudMetadata, ContainmentByPrefix) {
  for (const char* in : {"169.254.169.254/32", "169.254.0.0/16", "0.0.0.0/0", "128.0.0.0/1", "fd00:ec2::254/128", "fd00::/8", "::/0"}) {
    EXPECT_TRUE(cidrContainsCloudMetadata(in)) << in;
  }
  for (const char* out : {"169.254.169.253/32", "140.82.112.0/20", "0.0.0.0/1", "fd00:ec3::/32", "2001:db8::/32", "garbage", "1.2.3.4"}) {
    EXPECT_FALSE(cidrContainsCloudMetadata(out)) << out;
  }
}

}  // namespace
}  // namespace paddock::controllers
