// What an agent sends paddock-gateway's egress proxy: the CONNECT target (host:port, a host name,
// an address or CIDR as written), the first bytes of the tunnel (a TLS ClientHello whose SNI must
// match the target), and text the transcript masks before it is recorded.
#include "gateway/egress.h"
#include "gateway/transcript.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace paddock::gateway;
  auto in = paddock::fuzz::text(data, size);
  if (auto hp = parseHostPort(in, 443)) {
    if (hp->port < 1 || hp->port > 65535) __builtin_trap();
    auto host = normalizeHost(hp->host);
    for (char c : host) {
      if (c >= 'A' && c <= 'Z') __builtin_trap();  // normalized names are lowercase
    }
  }
  (void)parseAddress(in);
  (void)parseCidr(in);
  auto sni = parseClientHelloSni(in);
  if (sni.kind == SniResult::Kind::Found && sni.name.size() > in.size()) __builtin_trap();
  auto masked = maskCredentials(in, {"sk-ant-known-key"});
  if (masked.find("sk-ant-known-key") != std::string::npos) __builtin_trap();
  return 0;
}
