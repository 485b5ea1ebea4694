#include "controllers/policy_checks.h"

#include <arpa/inet.h>

#include <array>
#include <cstring>

namespace paddock::controllers {
namespace {

// The address and prefix length of a CIDR, as 16 bytes (IPv4 in its first 4); false when invalid.
bool parseCidr(const std::string& cidr, int& family, std::array<unsigned char, 16>& addr, int& prefix) {
  size_t slash = cidr.find('/');
  if (slash == std::string::npos || slash + 1 >= cidr.size() || cidr.size() - slash > 4) return false;
  std::string ip = cidr.substr(0, slash);
  addr.fill(0);
  family = ip.find(':') == std::string::npos ? AF_INET : AF_INET6;
  if (inet_pton(family, ip.c_str(), addr.data()) != 1) return false;
  prefix = 0;
  for (size_t i = slash + 1; i < cidr.size(); ++i) {
    if (cidr[i] < '0' || cidr[i] > '9') return false;
    prefix = prefix * 10 + (cidr[i] - '0');
  }
  return prefix <= (family == AF_INET ? 32 : 128);
}

bool contains(const std::string& cidr, const char* ip) {
  int family = 0, prefix = 0;
  std::array<unsigned char, 16> net{}, addr{};
  if (!parseCidr(cidr, family, net, prefix)) return false;
  if (inet_pton(family, ip, addr.data()) != 1) return false;  // the other family
  for (int bit = 0; bit < prefix; ++bit) {
    int mask = 0x80 >> (bit % 8);
    if ((net[bit / 8] & mask) != (addr[bit / 8] & mask)) return false;
  }
  return true;
}

bool everyone(const std::string& group) {
  return group == "system:authenticated" || group == "system:unauthenticated" || group == "system:serviceaccounts" ||
         group.rfind("system:serviceaccounts:", 0) == 0;
}

}  // namespace

bool cidrContainsCloudMetadata(const std::string& cidr) {
  return contains(cidr, "169.254.169.254") || contains(cidr, "fd00:ec2::254");
}

std::vector<PolicyFinding> permissivePolicyFindings(const AgentPolicy& p) {
  std::vector<PolicyFinding> out;
  for (size_t i = 0; i < p.egress.size(); ++i) {
    const auto& cidr = p.egress[i].cidr;
    std::string field = "spec.egress[" + std::to_string(i) + "].cidr";
    int family = 0, prefix = -1;
    std::array<unsigned char, 16> addr{};
    if (parseCidr(cidr, family, addr, prefix) && prefix == 0) {
      out.push_back({field, field + " " + cidr + " allows run pods to reach every address; list the networks the agent needs"});
    }
    if (cidrContainsCloudMetadata(cidr)) {
      out.push_back({field, field + " " + cidr + " reaches the cloud metadata address (allowed by spec.allowCloudMetadataEgress); "
                                                 "narrow it unless the agent must reach it"});
    }
  }
  for (size_t i = 0; i < p.stages.size(); ++i) {
    const auto& st = p.stages[i];
    std::string field = "spec.stages[" + std::to_string(i) + "].approval.approvers";
    for (const auto& g : st.approver_groups) {
      if (everyone(g)) {
        out.push_back({field + ".groups", field + ".groups lists " + g + ": every such user may approve stage " + st.name +
                                              " (with the approve verb); list a team's group instead"});
      }
    }
    for (const auto& u : st.approver_users) {
      if (u == "system:anonymous") {
        out.push_back({field + ".users", field + ".users lists system:anonymous; list the people who may approve stage " + st.name});
      }
    }
  }
  for (size_t i = 0; i < p.allowed_images.size(); ++i) {
    if (p.allowed_images[i] == "*" || p.allowed_images[i] == "**") {
      std::string field = "spec.images.allowed[" + std::to_string(i) + "]";
      out.push_back({field, field + " " + p.allowed_images[i] + " allows every image from every registry; list the team's registry path, e.g. registry.example.com/team/*"});
    }
  }
  if (p.repositories.empty()) {
    out.push_back({"spec.repositories", "spec.repositories is unset, so runs may target any Git host; list the hosts (and organisations) the team works on"});
  }
  return out;
}

}  // namespace paddock::controllers
