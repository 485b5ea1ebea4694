#include "gateway/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>

namespace paddock::gateway {
namespace {

Error bad(const std::string& field, const std::string& what) {
  return Error::local("InvalidConfig", field + ": " + what);
}

std::optional<std::string> scalar(const YAML::Node& n) {
  if (!n || !n.IsScalar()) return std::nullopt;
  return n.as<std::string>();
}

bool isHex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(c) || (c >= 'a' && c <= 'f'); });
}

Status parsePrices(const YAML::Node& n, Config& c) {
  if (!n) return Ok{};
  if (!n.IsMap()) return bad("prices", "must map a model name to {input, output, cacheRead, cacheWrite}");
  for (const auto& kv : n) {
    std::string model = kv.first.as<std::string>();
    Price p;
    struct F {
      const char* name;
      int64_t* out;
    };
    for (F f : {F{"input", &p.input}, F{"output", &p.output}, F{"cacheRead", &p.cache_read},
                F{"cacheWrite", &p.cache_write}}) {
      std::string field = "prices." + model + "." + f.name;
      auto text = scalar(kv.second[f.name]);
      if (!text) return bad(field, "is required: USD per million tokens, as a string like \"3\" or \"0.30\"");
      auto v = parsePerMillionNano(*text);
      if (!v) return bad(field, "\"" + *text + "\" is not a USD amount per million tokens (at most 3 decimals)");
      *f.out = *v;
    }
    c.prices[model] = p;
  }
  return Ok{};
}

Status parseLimits(const YAML::Node& n, const std::string& field, Limits& out) {
  if (!n) return Ok{};
  if (auto t = scalar(n["tokens"])) {
    try {
      out.tokens = std::stoll(*t);
    } catch (...) {
      return bad(field + ".tokens", "must be a whole number of tokens");
    }
    if (out.tokens < 0) return bad(field + ".tokens", "must not be negative");
  }
  if (auto t = scalar(n["costUSD"])) {
    auto v = parseUsdNano(*t);
    if (!v) return bad(field + ".costUSD", "\"" + *t + "\" is not a USD amount like \"10\" or \"2.50\"");
    out.cost_nano = *v;
  }
  return Ok{};
}

Status parseRuns(const YAML::Node& n, Config& c) {
  if (!n) return Ok{};
  if (!n.IsSequence()) return bad("runs", "must be a list of {namespace, name, tokenSHA256, budget}");
  for (size_t i = 0; i < n.size(); ++i) {
    std::string field = "runs[" + std::to_string(i) + "]";
    RunConfig r;
    r.ns = scalar(n[i]["namespace"]).value_or("");
    r.name = scalar(n[i]["name"]).value_or("");
    r.token_sha256 = scalar(n[i]["tokenSHA256"]).value_or("");
    if (r.ns.empty() || r.name.empty()) return bad(field, "namespace and name are required");
    if (!isHex64(r.token_sha256)) {
      return bad(field + ".tokenSHA256", "must be the lowercase hex SHA-256 of the run's credential "
                                         "(sha256sum of the token, without a newline)");
    }
    if (auto s = parseLimits(n[i]["budget"], field + ".budget", r.limits); !s) return s;
    for (const auto& other : c.runs) {
      if (other.token_sha256 == r.token_sha256) return bad(field + ".tokenSHA256", "is also " + other.key() + "'s");
    }
    c.runs.push_back(std::move(r));
  }
  return Ok{};
}

Status parseEgress(const YAML::Node& n, Config& c) {
  if (!n) return Ok{};
  if (!n.IsSequence()) return bad("egress", "must be a list of {host, ports} or {cidr, ports}");
  for (size_t i = 0; i < n.size(); ++i) {
    std::string field = "egress[" + std::to_string(i) + "]";
    EgressRule r;
    if (auto h = scalar(n[i]["host"])) {
      std::string name = h->starts_with("*.") ? h->substr(2) : *h;
      std::string norm = normalizeHost(name);
      if (norm.empty()) return bad(field + ".host", "\"" + *h + "\" is not a DNS name or *.suffix");
      r.host = h->starts_with("*.") ? "*." + norm : norm;
    } else if (auto t = scalar(n[i]["cidr"])) {
      r.cidr = parseCidr(*t);
      if (!r.cidr) return bad(field + ".cidr", "\"" + *t + "\" is not a CIDR like 198.18.0.0/15");
      r.cidr_text = *t;
    } else {
      return bad(field, "needs host or cidr");
    }
    if (const auto& ports = n[i]["ports"]; ports) {
      for (const auto& p : ports) {
        int v = 0;
        try {
          v = p.as<int>();
        } catch (...) {
        }
        if (v < 1 || v > 65535) return bad(field + ".ports", "must be port numbers 1-65535");
        r.ports.push_back(v);
      }
    }
    c.egress.push_back(std::move(r));
  }
  return Ok{};
}

Status parseMcpServers(const YAML::Node& n, Config& c) {
  if (!n) return Ok{};
  if (!n.IsSequence()) return bad("mcpServers", "must be a list of {name, url, tools, credentialFile, credentialHeader}");
  for (size_t i = 0; i < n.size(); ++i) {
    std::string field = "mcpServers[" + std::to_string(i) + "]";
    McpServer m;
    m.name = scalar(n[i]["name"]).value_or("");
    if (!validMcpServerName(m.name)) {
      return bad(field + ".name", "\"" + m.name + "\" must be lowercase letters, digits and '-' (at most 63), as in a DNS label");
    }
    for (const auto& other : c.mcp_servers) {
      if (other.name == m.name) return bad(field + ".name", "\"" + m.name + "\" is listed twice");
    }
    m.url = scalar(n[i]["url"]).value_or("");
    if (!parseHttpUrl(m.url)) {
      return bad(field + ".url", "\"" + m.url + "\" is not an http:// or https:// URL of the server's MCP endpoint");
    }
    const auto& tools = n[i]["tools"];
    if (!tools || !tools.IsSequence() || tools.size() == 0) {
      return bad(field + ".tools", "must list the tools runs may call (the others are refused)");
    }
    for (const auto& t : tools) {
      if (!t.IsScalar() || t.as<std::string>().empty()) return bad(field + ".tools", "must be tool names");
      m.tools.push_back(t.as<std::string>());
    }
    m.credential_file = scalar(n[i]["credentialFile"]).value_or("");
    m.credential_header = scalar(n[i]["credentialHeader"]).value_or(m.credential_header);
    if (m.credential_header.empty() || m.credential_header.find_first_of(" :\r\n") != std::string::npos) {
      return bad(field + ".credentialHeader", "must be an HTTP header name such as Authorization or X-Api-Key");
    }
    c.mcp_servers.push_back(std::move(m));
  }
  return Ok{};
}

template <typename T>
Status optionalNumber(const YAML::Node& n, const char* field, T& out, T min) {
  if (!n[field]) return Ok{};
  try {
    out = n[field].as<T>();
  } catch (...) {
    return bad(field, "must be a number");
  }
  if (out < min) return bad(field, "must be at least " + std::to_string(min));
  return Ok{};
}

}  // namespace

bool validMcpServerName(std::string_view name) {
  if (name.empty() || name.size() > 63 || name.front() == '-' || name.back() == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

std::optional<int64_t> parseUsdNano(std::string_view text) {
  size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  auto digits = [](std::string_view s) { return std::all_of(s.begin(), s.end(), ::isdigit); };
  if (whole.empty() || whole.size() > 9 || frac.size() > 9 || !digits(whole) || !digits(frac)) return std::nullopt;
  if (dot != std::string_view::npos && frac.empty()) return std::nullopt;
  int64_t v = std::stoll(std::string(whole)) * 1000000000;
  std::string f(frac);
  f.resize(9, '0');
  return v + std::stoll(f);
}

std::optional<int64_t> parsePerMillionNano(std::string_view text) {
  auto v = parseUsdNano(text);
  if (!v || *v % 1000000 != 0) return std::nullopt;
  return *v / 1000000;
}

std::string formatUsd(int64_t nano) {
  std::string sign = nano < 0 ? "-" : "";
  if (nano < 0) nano = -nano;
  std::string frac = std::to_string(nano % 1000000000);
  frac = std::string(9 - frac.size(), '0') + frac;
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  return sign + std::to_string(nano / 1000000000) + (frac.empty() ? "" : "." + frac);
}

Result<Config> parseConfig(std::string_view text) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return Error::local("InvalidConfig", std::string("not YAML or JSON: ") + e.what());
  }
  if (!root.IsMap()) return Error::local("InvalidConfig", "the configuration must be a mapping");
  Config c;
  c.listen = scalar(root["listen"]).value_or(c.listen);
  c.upstream = scalar(root["upstream"]).value_or(c.upstream);
  c.api_key_file = scalar(root["apiKeyFile"]).value_or("");
  c.pinned_model = scalar(root["model"]["pin"]).value_or("");
  c.audit_dir = scalar(root["auditDir"]).value_or("");
  if (!parseHttpUrl(c.upstream)) {
    return bad("upstream", "must be an http:// or https:// URL such as https://api.anthropic.com");
  }
  while (c.upstream.ends_with("/")) c.upstream.pop_back();
  if (c.api_key_file.empty()) return bad("apiKeyFile", "is required: the file that holds the model API key");
  for (auto s : {parsePrices(root["prices"], c), parseRuns(root["runs"], c), parseEgress(root["egress"], c),
                 parseMcpServers(root["mcpServers"], c),
                 optionalNumber(root, "checkpointPercent", c.checkpoint_percent, 1),
                 optionalNumber(root, "maxRequestBytes", c.max_request_bytes, int64_t{1024}),
                 optionalNumber(root, "inputOverheadTokens", c.input_overhead_tokens, int64_t{0}),
                 optionalNumber(root, "upstreamTimeoutSeconds", c.upstream_timeout_seconds, 1),
                 optionalNumber(root, "clientWriteTimeoutSeconds", c.client_write_timeout_seconds, 1),
                 optionalNumber(root, "blobThresholdBytes", c.blob_threshold_bytes, int64_t{64})}) {
    if (!s) return s.error();
  }
  if (c.checkpoint_percent > 100) return bad("checkpointPercent", "must be 1-100");
  if (!c.pinned_model.empty() && !c.prices.count(c.pinned_model)) {
    return bad("prices", "has no entry for the pinned model " + c.pinned_model + ": add its four prices");
  }
  if (c.prices.empty()) return bad("prices", "is required: a price table per model the runs may use");
  return c;
}

}  // namespace paddock::gateway
