// Egress by hostname, as pure functions: which CONNECT (or plain-HTTP) targets the allow-list
// admits, which resolved addresses a connection may go to, and the SNI a TLS ClientHello names.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace paddock::gateway {

// An IPv4 or IPv6 address as 16 bytes (IPv4 as ::ffff:a.b.c.d).
using Address = std::array<uint8_t, 16>;
std::optional<Address> parseAddress(std::string_view text);

struct Cidr {
  Address base{};
  int prefix = 0;  // over the 16 bytes (an IPv4 /15 is 96+15)
  bool contains(const Address& a) const;
};
std::optional<Cidr> parseCidr(std::string_view text);

// One allow-list entry: a host (exact "api.example.com" or "*.example.com", which matches any
// name below example.com but not example.com itself) or a CIDR, each with its ports (empty: 443).
struct EgressRule {
  std::string host;
  std::optional<Cidr> cidr;
  std::string cidr_text;
  std::vector<int> ports;
};

// Whether `host` (lowercased, no trailing dot) on `port` is allowed by a host rule.
bool hostAllowed(const std::vector<EgressRule>& rules, std::string_view host, int port);

// Why an address is not a public one: "loopback", "private", "link-local" (metadata servers
// live there), "unspecified", "multicast", "reserved"..., or "" for a public address.
std::string addressClass(const Address& a);

// Whether a connection to `a`:`port` may be made: a public address, or one a CIDR rule (with
// that port, or any when it lists none) allows. `why` says what refused it.
bool addressAllowed(const std::vector<EgressRule>& rules, const Address& a, int port, std::string* why);

// Splits "host:port" (the CONNECT target; "[v6]:port" too). nullopt when malformed.
struct HostPort {
  std::string host;
  int port = 0;
};
std::optional<HostPort> parseHostPort(std::string_view authority, int default_port = 0);
// An http:// or https:// URL: scheme, host, port (the scheme's by default) and the target (the
// path and query, "/" when none). nullopt when malformed.
struct HttpUrl {
  bool tls = false;
  std::string host;
  int port = 0;
  std::string target = "/";
};
std::optional<HttpUrl> parseHttpUrl(std::string_view url);
// The run credential a proxy request presents: the password of `Proxy-Authorization: Basic
// base64(user:password)` (a client sends it from a proxy URL's userinfo, http://run:TOKEN@gateway),
// or "" when there is none or it is malformed.
std::string proxyCredential(std::string_view header);
// A lowercased DNS name without a trailing dot, or "" when `host` is not a valid name.
std::string normalizeHost(std::string_view host);

// The server_name of a TLS ClientHello record. Result: Incomplete (need more bytes), NotTls,
// NoSni, or Found with the name.
struct SniResult {
  enum class Kind { Incomplete, NotTls, NoSni, Found } kind = Kind::Incomplete;
  std::string name;
};
SniResult parseClientHelloSni(std::string_view bytes);

}  // namespace paddock::gateway
