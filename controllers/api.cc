#include "controllers/api.h"

#include <algorithm>
#include <cctype>

#include "controllers/references.h"
#include "operator/common/duration.h"

namespace paddock::controllers {
namespace {

Error invalid(const std::string& field, const std::string& what) {
  return Error::local("InvalidSpec", field + ": " + what);
}

// Reads optional fields of a JSON object, remembering the first problem with its field path.
class Reader {
 public:
  Reader(const json& object, std::string path) : object_(object), path_(std::move(path)) {}

  const json* find(const char* key) const {
    if (!object_.is_object()) return nullptr;
    auto it = object_.find(key);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }
  std::string field(const char* key) const { return path_.empty() ? key : path_ + "." + key; }

  std::string str(const char* key, std::string fallback = "") {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_string()) return fail(key, "must be a string"), fallback;
    return v->get<std::string>();
  }
  int64_t integer(const char* key, int64_t fallback) {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_number_integer()) return fail(key, "must be an integer"), fallback;
    return v->get<int64_t>();
  }
  bool boolean(const char* key, bool fallback) {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_boolean()) return fail(key, "must be true or false"), fallback;
    return v->get<bool>();
  }
  std::vector<std::string> strings(const char* key) {
    std::vector<std::string> out;
    const json* v = find(key);
    if (!v) return out;
    if (!v->is_array()) return fail(key, "must be a list of strings"), out;
    for (const auto& s : *v) {
      if (!s.is_string()) return fail(key, "must be a list of strings"), out;
      out.push_back(s.get<std::string>());
    }
    return out;
  }
  std::optional<std::chrono::milliseconds> duration(const char* key) {
    const json* v = find(key);
    if (!v) return std::nullopt;
    auto d = v->is_string() ? parseDuration(v->get<std::string>()) : std::nullopt;
    if (!d) fail(key, "must be a duration such as 45m or 1h30m");
    return d;
  }
  Reader child(const char* key) {
    const json* v = find(key);
    if (v && !v->is_object()) fail(key, "must be an object");
    return Reader(v && v->is_object() ? *v : empty(), field(key));
  }
  std::vector<Reader> list(const char* key) {
    std::vector<Reader> out;
    const json* v = find(key);
    if (!v) return out;
    if (!v->is_array()) return fail(key, "must be a list"), out;
    for (size_t i = 0; i < v->size(); ++i) out.emplace_back((*v)[i], field(key) + "[" + std::to_string(i) + "]");
    return out;
  }
  Budget budget(const char* key) {
    Reader b = child(key);
    Budget out;
    if (b.find("tokens")) out.tokens = b.integer("tokens", 0);
    if (const json* c = b.find("costUSD")) {
      auto cents = c->is_string() ? parseCostCents(c->get<std::string>()) : std::nullopt;
      if (!cents) b.fail("costUSD", "must be a decimal string of dollars such as \"6\" or \"6.25\"");
      out.cost_cents = cents;
    }
    out.wall_clock = b.duration("wallClock");
    absorb(b);
    return out;
  }

  void fail(const char* key, const std::string& what) {
    if (!error_) error_ = invalid(field(key), what);
  }
  void absorb(const Reader& other) {
    if (!error_ && other.error_) error_ = other.error_;
  }
  const std::optional<Error>& error() const { return error_; }
  const json& raw() const { return object_; }

 private:
  static const json& empty() {
    static const json e = json::object();
    return e;
  }
  const json& object_;
  std::string path_;
  std::optional<Error> error_;
};

std::map<std::string, std::string> stringMap(Reader& r, const char* key) {
  std::map<std::string, std::string> out;
  const json* v = r.find(key);
  if (!v) return out;
  if (!v->is_object()) return r.fail(key, "must be a map of strings"), out;
  for (const auto& [k, val] : v->items()) {
    if (!val.is_string()) return r.fail(key, "must be a map of strings"), out;
    out[k] = val.get<std::string>();
  }
  return out;
}

std::vector<EgressRule> egressRules(Reader& spec) {
  std::vector<EgressRule> out;
  for (auto& e : spec.list("egress")) {
    EgressRule rule{e.str("cidr"), e.str("host"), {}};
    if (const json* ports = e.find("ports"); ports && ports->is_array()) {
      for (const auto& port : *ports) {
        if (port.is_number_integer()) rule.ports.push_back(port.get<int>());
        else e.fail("ports", "must be a list of port numbers");
      }
    }
    if (rule.cidr.empty() == rule.host.empty()) e.fail("cidr", "set exactly one of cidr and host");
    spec.absorb(e);
    out.push_back(std::move(rule));
  }
  return out;
}

// http(s)://HOST[:PORT][/...], HOST without userinfo, PORT 1-65535: what paddock-gateway accepts.
bool mcpUrlValid(const std::string& url) {
  size_t scheme = url.starts_with("https://") ? 8 : url.starts_with("http://") ? 7 : 0;
  if (scheme == 0) return false;
  std::string authority = url.substr(scheme, url.find_first_of("/?#", scheme) - scheme);
  if (authority.empty() || authority.find('@') != std::string::npos || authority.front() == ':') return false;
  size_t colon = authority.rfind(':');
  if (colon == std::string::npos || authority.back() == ']') return true;
  std::string port = authority.substr(colon + 1);
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit)) return false;
  int p = std::stoi(port);
  return p >= 1 && p <= 65535;
}

// spec.tools.mcpServers: the same checks the CRD's schema makes, for objects that did not pass it.
std::vector<McpServerSpec> mcpServers(Reader& tools, bool gateway) {
  std::vector<McpServerSpec> out;
  for (auto& m : tools.list("mcpServers")) {
    McpServerSpec s{m.str("name"), m.str("url"), m.strings("allowTools")};
    const std::string& n = s.name;
    bool label = !n.empty() && n.size() <= 40 && n.front() != '-' && n.back() != '-' &&
                 std::all_of(n.begin(), n.end(), [](char c) { return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-'; });
    if (!label) m.fail("name", "must be lowercase letters, digits and '-', at most 40, e.g. github");
    for (const auto& other : out) {
      if (other.name == n) m.fail("name", "\"" + n + "\" is listed twice");
    }
    if (!mcpUrlValid(s.url)) {
      m.fail("url", "must be the server's streamable HTTP endpoint, an http:// or https:// URL with a host and "
                    "an optional port 1-65535, e.g. https://mcp.example.com/mcp");
    }
    if (s.allow_tools.empty()) m.fail("allowTools", "must list the tools runs may call (the gateway refuses the others)");
    Reader c = m.child("credential");
    s.secret = c.str("secretName");
    s.key = c.str("key");
    s.header = c.str("header", s.header);
    if (m.find("credential") && (s.secret.empty() || s.key.empty())) {
      c.fail("secretName", "and key are required: the Secret in the team's namespace holding the server's credential");
    }
    m.absorb(c);
    tools.absorb(m);
    out.push_back(std::move(s));
  }
  if (!out.empty() && !gateway) {
    tools.fail("mcpServers", "needs spec.gateway: runs reach MCP servers only through the namespace's gateway");
  }
  return out;
}

std::optional<GatewaySpec> gatewaySpec(Reader& spec) {
  if (!spec.find("gateway")) return std::nullopt;
  Reader g = spec.child("gateway");
  Reader key = g.child("modelKey");
  GatewaySpec out;
  out.key_secret = key.str("secretName");
  out.key_key = key.str("key");
  if (out.key_secret.empty()) key.fail("secretName", "is required: the Secret in the team's namespace holding the model API key");
  if (out.key_key.empty()) key.fail("key", "is required: the key of that Secret whose value is the model API key");
  out.upstream = g.str("upstream", out.upstream);
  const json* prices = g.find("prices");
  if (!prices || !prices->is_object() || prices->empty()) {
    g.fail("prices", "must map each model runs may use to {input, output, cacheRead, cacheWrite}");
  } else {
    for (const auto& [model, v] : prices->items()) {
      Reader r(v, g.field("prices") + "." + model);
      ModelPrice price{r.str("input"), r.str("output"), r.str("cacheRead"), r.str("cacheWrite")};
      for (auto [name, value] : {std::pair{"input", &price.input}, {"output", &price.output},
                                 {"cacheRead", &price.cache_read}, {"cacheWrite", &price.cache_write}}) {
        if (value->empty()) r.fail(name, "is required: USD per million tokens as a decimal string, e.g. \"3\" or \"0.30\"");
      }
      out.prices[model] = std::move(price);
      g.absorb(r);
    }
  }
  g.absorb(key);
  spec.absorb(g);
  return out;
}

// The grammar of a policy's images, protected paths and repository hosts (controllers/references.h),
// checked after parsing; the first problem names its field, never the value.
std::optional<Error> policyReferenceProblem(const AgentPolicy& p) {
  if (!parseImageReference(p.default_image)) {
    return invalid("spec.images.default", "must be an image reference that names its registry, e.g. registry.example.com/team/agent:1.2");
  }
  for (size_t i = 0; i < p.allowed_images.size(); ++i) {
    if (!parseImagePattern(p.allowed_images[i])) {
      return invalid("spec.images.allowed[" + std::to_string(i) + "]",
                     "must be REGISTRY/PATH[:TAG] with a literal registry and globs only in the path and tag, or "
                     "REGISTRY/PATH@sha256:DIGEST, e.g. registry.example.com/team/*");
    }
  }
  for (size_t i = 0; i < p.stages.size(); ++i) {
    if (!parseImageReference(p.stages[i].image)) {
      return invalid("spec.stages[" + std::to_string(i) + "].image", "must be an image reference that names its registry");
    }
  }
  for (size_t i = 0; i < p.protected_paths.size(); ++i) {
    if (auto problem = protectedPathProblem(p.protected_paths[i]); !problem.empty()) {
      return invalid("spec.protectedPaths[" + std::to_string(i) + "]", problem);
    }
  }
  if (p.sandbox.command.empty() || p.sandbox.command[0].empty()) {
    return invalid("spec.sandbox.command", "must name the agent image's entrypoint, e.g. [/usr/local/bin/paddock-agent]");
  }
  for (size_t i = 0; i < p.repositories.size(); ++i) {
    // A host is valid when a URL on it is.
    if (!parseRepositoryUrl("https://" + p.repositories[i].host + "/x").url) {
      return invalid("spec.repositories[" + std::to_string(i) + "].host", "must be a lower-case DNS name, e.g. github.com");
    }
  }
  return std::nullopt;
}

std::optional<Error> runReferenceProblem(const AgentRun& r) {
  if (auto problem = taskTextProblem(r.task); !problem.empty()) return invalid("spec.task", problem);
  if (auto url = parseRepositoryUrl(r.repository_url); !url.url) return invalid("spec.repository.url", url.problem);
  if (auto problem = branchNameProblem(r.base_branch); !problem.empty()) return invalid("spec.repository.baseBranch", problem);
  if (!r.image.empty() && !parseImageReference(r.image)) {
    return invalid("spec.image", "must be an image reference that names its registry, e.g. registry.example.com/team/agent:1.2");
  }
  return std::nullopt;
}

}  // namespace

std::optional<int64_t> parseCostCents(const std::string& text) {
  if (text.empty() || text.size() > 15) return std::nullopt;
  int64_t whole = 0, cents = 0;
  size_t i = 0;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) whole = whole * 10 + (text[i] - '0');
  if (i == 0) return std::nullopt;
  if (i == text.size()) return whole * 100;
  if (text[i] != '.' || i + 1 == text.size() || text.size() - i - 1 > 2) return std::nullopt;
  int digits = 0;
  for (++i; i < text.size(); ++i, ++digits) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
    cents = cents * 10 + (text[i] - '0');
  }
  if (digits == 1) cents *= 10;
  return whole * 100 + cents;
}

std::string formatCents(int64_t cents) {
  std::string out = std::to_string(cents / 100);
  if (int64_t rest = cents % 100; rest) {
    out += "." + std::string(rest < 10 ? "0" : "") + std::to_string(rest);
    if (out.back() == '0') out.pop_back();
  }
  return out;
}

bool LabelSelector::matches(const std::map<std::string, std::string>& labels) const {
  for (const auto& [k, v] : match_labels) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  for (const auto& e : match_expressions) {
    auto it = labels.find(e.key);
    bool has = it != labels.end();
    bool in = has && std::find(e.values.begin(), e.values.end(), it->second) != e.values.end();
    if (e.op == "In" && !in) return false;
    if (e.op == "NotIn" && in) return false;
    if (e.op == "Exists" && !has) return false;
    if (e.op == "DoesNotExist" && has) return false;
    if (e.op != "In" && e.op != "NotIn" && e.op != "Exists" && e.op != "DoesNotExist") return false;
  }
  return true;
}

Result<AgentPolicy> parseAgentPolicy(const json& object) {
  Reader root(object, "");
  AgentPolicy p;
  Reader meta = root.child("metadata");
  p.name = meta.str("name");
  Reader spec = root.child("spec");
  Reader sel = spec.child("namespaceSelector");
  p.namespace_selector.match_labels = stringMap(sel, "matchLabels");
  for (auto& e : sel.list("matchExpressions")) {
    p.namespace_selector.match_expressions.push_back({e.str("key"), e.str("operator"), e.strings("values")});
    sel.absorb(e);
  }
  Reader images = spec.child("images");
  p.default_image = images.str("default");
  p.allowed_images = images.strings("allowed");
  p.model_pin = spec.child("model").str("pin");
  Reader budgets = spec.child("budgets");
  p.default_budget = budgets.budget("default");
  p.max_budget = budgets.budget("max");
  p.checkpoint_percent = static_cast<int>(budgets.integer("checkpointPercent", 60));
  Reader metrics = budgets.child("metrics");
  bool tokens_named = false, cost_named = false;
  if (auto q = metrics.str("tokens"); !q.empty() && q != kFormerTokensQuery) {
    p.tokens_query = q;
    tokens_named = true;
  }
  if (auto q = metrics.str("costUSD"); !q.empty() && q != kFormerCostQuery) {
    p.cost_query = q;
    cost_named = true;
  }
  Reader unavailable = budgets.child("whenMetricsUnavailable");
  if (auto after = unavailable.duration("after")) p.metrics_grace = *after;
  std::string action = unavailable.str("action");
  if (action == "Continue") p.continue_without_metrics = true;
  else if (!action.empty() && action != "Terminate") unavailable.fail("action", "must be Terminate or Continue");
  budgets.absorb(metrics);
  budgets.absorb(unavailable);
  p.max_running = static_cast<int>(spec.child("concurrency").integer("maxRunning", 10));
  Reader idempotency = spec.child("idempotency");
  if (auto r = idempotency.duration("retention")) p.idempotency_retention = *r;
  spec.absorb(idempotency);
  for (auto& s : spec.list("stages")) {
    StageSpec st;
    st.name = s.str("name");
    st.image = s.str("image");
    Reader approval = s.child("approval");
    Reader approvers = approval.child("approvers");
    st.approver_users = approvers.strings("users");
    st.approver_groups = approvers.strings("groups");
    st.min_approvals = static_cast<int>(approval.integer("minApprovals", 1));
    if (auto t = approval.duration("timeout")) st.approval_timeout = *t;
    Reader endpoint = s.child("endpoint");
    st.endpoint_url = endpoint.str("url");
    st.endpoint_cidr = endpoint.str("cidr");
    approval.absorb(approvers);
    s.absorb(approval);
    s.absorb(endpoint);
    spec.absorb(s);
    p.stages.push_back(std::move(st));
  }
  for (auto& s : spec.list("secrets")) {
    p.secrets.push_back({s.str("secretName"), s.str("key"), s.strings("stages")});
    spec.absorb(s);
  }
  p.uid = meta.str("uid");
  p.runtime_class_name = spec.str("runtimeClassName");
  if (const json* res = spec.find("resources")) {
    if (res->is_object()) p.resources = *res;
    else spec.fail("resources", "must be an object with limits and requests");
  }
  p.egress = egressRules(spec);
  p.gateway = gatewaySpec(spec);
  // On the gateway path the gateway's own counters are authoritative, unless the policy names queries.
  if (p.gateway && !tokens_named) p.tokens_query = kGatewayTokensQuery;
  if (p.gateway && !cost_named) p.cost_query = kGatewayCostQuery;
  Reader tools = spec.child("tools");
  p.tools_allow = tools.strings("allow");
  p.tools_deny = tools.strings("deny");
  p.mcp_servers = mcpServers(tools, p.gateway.has_value());
  p.protected_paths = spec.strings("protectedPaths");
  Reader sandbox = spec.child("sandbox");
  if (sandbox.find("command")) p.sandbox.command = sandbox.strings("command");
  const std::string when = sandbox.str("whenUnavailable");
  if (!when.empty() && when != "Refuse" && when != "Warn") sandbox.fail("whenUnavailable", "must be Refuse or Warn");
  p.sandbox.warn_when_unavailable = when == "Warn";
  p.allow_cloud_metadata_egress = spec.boolean("allowCloudMetadataEgress", false);
  for (auto& r : spec.list("repositories")) {
    p.repositories.push_back({r.str("host"), r.strings("organizations")});
    spec.absorb(r);
  }
  for (Reader* r : {&sel, &images, &budgets, &tools, &sandbox}) spec.absorb(*r);
  root.absorb(meta);
  root.absorb(spec);
  if (root.error()) return *root.error();
  if (p.default_image.empty()) return invalid("spec.images.default", "is required: the image runs use unless they name another");
  if (auto problem = policyReferenceProblem(p)) return *problem;
  return p;
}

Result<AgentRun> parseAgentRun(const json& object) {
  Reader root(object, "");
  AgentRun r;
  Reader meta = root.child("metadata");
  r.ns = meta.str("namespace");
  r.name = meta.str("name");
  r.uid = meta.str("uid");
  r.generation = meta.integer("generation", 0);
  r.creation_timestamp = meta.str("creationTimestamp");
  Reader spec = root.child("spec");
  r.task = spec.str("task");
  Reader repo = spec.child("repository");
  r.repository_url = repo.str("url");
  r.base_branch = repo.str("baseBranch", "main");
  spec.absorb(repo);
  r.image = spec.str("image");
  r.model = spec.str("model");
  r.budget = spec.budget("budget");
  r.stages = spec.strings("stages");
  r.idempotency_key = spec.str("idempotencyKey");
  r.requested_by = spec.str("requestedBy");
  r.cancel = spec.boolean("cancel", false);
  r.phase = root.child("status").str("phase");
  auto pod = json::json_pointer("/status/stages/0/pod");
  r.started = object.contains(pod) && object[pod].is_string() && !object[pod].get<std::string>().empty();
  auto credential = json::json_pointer("/status/gateway/credentialSecret");
  if (object.contains(credential) && object[credential].is_string()) r.gateway_credential_secret = object[credential].get<std::string>();
  root.absorb(meta);
  root.absorb(spec);
  if (root.error()) return *root.error();
  if (auto problem = runReferenceProblem(r)) return *problem;
  return r;
}

}  // namespace paddock::controllers
