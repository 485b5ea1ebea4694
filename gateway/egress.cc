#include "gateway/egress.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace paddock::gateway {
namespace {

Address v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return Address{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}
bool isV4(const Address& a) {
  static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::equal(prefix, prefix + 12, a.begin());
}
Cidr cidr4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, int prefix) { return Cidr{v4(a, b, c, d), 96 + prefix}; }
Cidr cidr6(std::string_view text) { return *parseCidr(text); }

}  // namespace

std::optional<Address> parseAddress(std::string_view text) {
  std::string s(text);
  Address out{};
  in_addr a4{};
  if (::inet_pton(AF_INET, s.c_str(), &a4) == 1) {
    auto* b = reinterpret_cast<const uint8_t*>(&a4.s_addr);
    return v4(b[0], b[1], b[2], b[3]);
  }
  in6_addr a6{};
  if (::inet_pton(AF_INET6, s.c_str(), &a6) == 1) {
    std::copy(a6.s6_addr, a6.s6_addr + 16, out.begin());
    return out;
  }
  return std::nullopt;
}

bool Cidr::contains(const Address& a) const {
  int full = prefix / 8, rest = prefix % 8;
  if (!std::equal(base.begin(), base.begin() + full, a.begin())) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (base[full] & mask) == (a[full] & mask);
}

std::optional<Cidr> parseCidr(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto addr = parseAddress(text.substr(0, slash));
  if (!addr) return std::nullopt;
  std::string_view bits = text.substr(slash + 1);
  if (bits.empty() || bits.size() > 3 || !std::all_of(bits.begin(), bits.end(), ::isdigit)) return std::nullopt;
  int prefix = std::stoi(std::string(bits));
  bool four = text.substr(0, slash).find(':') == std::string_view::npos;
  if (prefix > (four ? 32 : 128)) return std::nullopt;
  return Cidr{*addr, four ? 96 + prefix : prefix};
}

std::string normalizeHost(std::string_view host) {
  std::string h(host);
  if (!h.empty() && h.back() == '.') h.pop_back();
  if (h.empty() || h.size() > 253) return "";
  for (auto& c : h) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return "";
  }
  if (h.front() == '.' || h.find("..") != std::string::npos) return "";
  return h;
}

static bool portListed(const std::vector<int>& ports, int port) {
  if (ports.empty()) return port == 443;
  return std::find(ports.begin(), ports.end(), port) != ports.end();
}

bool hostAllowed(const std::vector<EgressRule>& rules, std::string_view host, int port) {
  for (const auto& r : rules) {
    if (r.host.empty() || !portListed(r.ports, port)) continue;
    if (r.host.starts_with("*.")) {
      std::string_view suffix = std::string_view(r.host).substr(1);  // ".example.com"
      if (host.size() > suffix.size() && host.ends_with(suffix)) return true;
    } else if (host == r.host) {
      return true;
    }
  }
  return false;
}

std::string addressClass(const Address& a) {
  struct Range {
    Cidr cidr;
    const char* why;
  };
  static const std::vector<Range> ranges = {
      {cidr4(0, 0, 0, 0, 8), "unspecified"},        {cidr4(10, 0, 0, 0, 8), "private"},
      {cidr4(100, 64, 0, 0, 10), "shared (CGNAT)"}, {cidr4(127, 0, 0, 0, 8), "loopback"},
      {cidr4(169, 254, 0, 0, 16), "link-local (metadata)"}, {cidr4(172, 16, 0, 0, 12), "private"},
      {cidr4(192, 0, 0, 0, 24), "reserved"},        {cidr4(192, 168, 0, 0, 16), "private"},
      {cidr4(198, 18, 0, 0, 15), "benchmarking"},   {cidr4(224, 0, 0, 0, 4), "multicast"},
      {cidr4(240, 0, 0, 0, 4), "reserved"},         {cidr6("::/128"), "unspecified"},
      {cidr6("::1/128"), "loopback"},               {cidr6("fc00::/7"), "private"},
      {cidr6("fe80::/10"), "link-local (metadata)"}, {cidr6("ff00::/8"), "multicast"},
      {cidr6("64:ff9b::/96"), "NAT64"},             {cidr6("fd00:ec2::254/128"), "metadata"},
  };
  for (const auto& r : ranges) {
    if (r.cidr.contains(a)) return r.why;
  }
  return "";
}

bool addressAllowed(const std::vector<EgressRule>& rules, const Address& a, int port, std::string* why) {
  for (const auto& r : rules) {
    if (r.cidr && r.cidr->contains(a) && (r.ports.empty() || portListed(r.ports, port))) return true;
  }
  std::string cls = addressClass(a);
  if (cls.empty()) return true;
  if (why) *why = "the address is " + cls + " and no egress cidr entry allows it";
  return false;
}

std::string proxyCredential(std::string_view header) {
  if (header.size() < 6 || !std::equal(header.begin(), header.begin() + 6, "Basic ", [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
      })) {
    return "";
  }
  std::string_view in = header.substr(6);
  while (!in.empty() && in.front() == ' ') in.remove_prefix(1);
  while (!in.empty() && (in.back() == ' ' || in.back() == '=')) in.remove_suffix(1);
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    size_t v = alphabet.find(c);
    if (v == std::string::npos || in.size() > 1024) return "";
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  size_t colon = out.find(':');
  return colon == std::string::npos ? "" : out.substr(colon + 1);
}

std::optional<HttpUrl> parseHttpUrl(std::string_view url) {
  HttpUrl u;
  u.tls = url.starts_with("https://");
  if (!u.tls && !url.starts_with("http://")) return std::nullopt;
  std::string_view rest = url.substr(u.tls ? 8 : 7);
  size_t slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  if (authority.find('@') != std::string_view::npos) return std::nullopt;  // no userinfo
  auto hp = parseHostPort(authority, u.tls ? 443 : 80);
  if (!hp) return std::nullopt;
  u.host = hp->host;
  u.port = hp->port;
  if (slash != std::string_view::npos) {
    std::string_view target = rest.substr(slash);
    target = target.substr(0, target.find('#'));
    if (target.starts_with("?")) u.target = "/" + std::string(target);
    else if (!target.empty()) u.target = std::string(target);
  }
  return u;
}

std::optional<HostPort> parseHostPort(std::string_view authority, int default_port) {
  std::string_view host = authority, port;
  if (authority.starts_with("[")) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return std::nullopt;
      port = rest.substr(1);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  HostPort out;
  if (port.empty()) {
    if (default_port == 0) return std::nullopt;
    out.port = default_port;
  } else {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit)) return std::nullopt;
    out.port = std::stoi(std::string(port));
    if (out.port < 1 || out.port > 65535) return std::nullopt;
  }
  if (parseAddress(host)) {
    out.host = std::string(host);
  } else {
    out.host = normalizeHost(host);
    if (out.host.empty()) return std::nullopt;
  }
  return out;
}

SniResult parseClientHelloSni(std::string_view b) {
  using K = SniResult::Kind;
  auto u8 = [&](size_t i) { return static_cast<uint8_t>(b[i]); };
  auto u16 = [&](size_t i) { return static_cast<size_t>(u8(i) << 8 | u8(i + 1)); };
  if (b.size() < 5) return {K::Incomplete, ""};
  if (u8(0) != 0x16 || u8(1) != 0x03) return {K::NotTls, ""};
  size_t record_len = u16(3);
  if (b.size() < 5 + record_len) return {K::Incomplete, ""};
  std::string_view h = b.substr(5, record_len);  // the handshake (assumed in one record)
  if (h.size() < 4 || static_cast<uint8_t>(h[0]) != 0x01) return {K::NotTls, ""};
  size_t p = 4 + 2 + 32;  // header, client_version, random
  auto need = [&](size_t n) { return p + n <= h.size(); };
  auto hu8 = [&](size_t i) { return static_cast<uint8_t>(h[i]); };
  auto hu16 = [&](size_t i) { return static_cast<size_t>(hu8(i) << 8 | hu8(i + 1)); };
  if (!need(1)) return {K::NotTls, ""};
  p += 1 + hu8(p);  // session id
  if (!need(2)) return {K::NotTls, ""};
  p += 2 + hu16(p);  // cipher suites
  if (!need(1)) return {K::NotTls, ""};
  p += 1 + hu8(p);  // compression methods
  if (!need(2)) return {K::NoSni, ""};
  size_t end = p + 2 + hu16(p);
  p += 2;
  if (end > h.size()) return {K::NotTls, ""};
  while (p + 4 <= end) {
    size_t type = hu16(p), len = hu16(p + 2);
    p += 4;
    if (p + len > end) return {K::NotTls, ""};
    if (type == 0 && len >= 5 && hu8(p + 2) == 0) {  // server_name list, first entry a host_name
      size_t name_len = hu16(p + 3);
      if (5 + name_len > len) return {K::NotTls, ""};
      return {K::Found, normalizeHost(h.substr(p + 5, name_len))};
    }
    p += len;
  }
  return {K::NoSni, ""};
}

}  // namespace paddock::gateway
