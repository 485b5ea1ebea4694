#include "controllers/run_reconciler.h"

#include "controllers/lifecycle.h"
#include "controllers/stages.h"
#include "controllers/terms.h"
#include "controllers/trust.h"

#include <algorithm>
#include <tuple>
#include "operator/audit/record.h"
#include "operator/common/json.h"
#include "operator/common/log.h"
#include "operator/common/timestamp.h"

namespace paddock::controllers {
namespace {

using runtime::Action;
using runtime::ReconcileError;

std::map<std::string, std::string> labelsOf(const json& object) {
  std::map<std::string, std::string> out;
  auto p = json::json_pointer("/metadata/labels");
  if (object.contains(p) && object[p].is_object()) {
    for (const auto& [k, v] : object[p].items()) {
      if (v.is_string()) out[k] = v.get<std::string>();
    }
  }
  return out;
}

// An RFC 3339 timestamp ("2026-11-23T10:00:00Z"), to the second.
std::optional<std::chrono::system_clock::time_point> parseTime(const std::string& stamp) {
  std::tm tm{};
  if (stamp.size() < 19 || !strptime(stamp.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

// Seconds since an RFC 3339 timestamp, or 0.
std::chrono::seconds since(const std::string& stamp, std::chrono::system_clock::time_point now) {
  auto t = parseTime(stamp);
  return t ? std::chrono::duration_cast<std::chrono::seconds>(now - *t) : std::chrono::seconds(0);
}

bool hasCondition(const json& status, const std::string& type) {
  for (const auto& c : status.value("conditions", json::array())) {
    if (c.value("type", "") == type) return true;
  }
  return false;
}

bool conditionTrue(const json& status, const std::string& type) {
  for (const auto& c : status.value("conditions", json::array())) {
    if (c.value("type", "") == type) return c.value("status", "") == "True";
  }
  return false;
}

double numberAt(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) return 0;
  if (it->is_number()) return it->get<double>();
  if (it->is_string()) {
    try {
      return std::stod(it->get<std::string>());
    } catch (...) {
    }
  }
  return 0;
}

}  // namespace

std::vector<std::string> runsWaitingForSlot(const kube::InformerEvent& event, const RunIndex& runs) {
  auto held = [](const kube::ObjectPtr& o) {
    if (!o) return false;
    auto r = parseAgentRun(*o);
    return r && holdsSlot(*r);
  };
  bool freed = event.type == kube::InformerEvent::Type::Delete ? held(event.object)
                                                                : held(event.old) && !held(event.object);
  if (!freed) return {};
  return runs.waitingForSlot();
}

RunReconciler::RunReconciler(kube::Client& client, kube::Informer& runs, kube::Informer& policies,
                             kube::Informer& namespaces, kube::Informer& pods, kube::Informer& approvals,
                             kube::Informer& network_policies, runtime::EventRecorder* events,
                             RunReconcilerOptions options)
    : client_(client), runs_(runs), policies_(policies), namespaces_(namespaces), pods_(pods), approvals_(approvals),
      network_policies_(network_policies), events_(events), options_(std::move(options)) {
  runs_.addHandler([this](const kube::InformerEvent& e) { index_.observe(e); });
  // An agent pod in the cache means its run started, whatever the run's status says yet (a new
  // leader after a crash between the pod's creation and the first status write).
  pods_.addHandler([this](const kube::InformerEvent& e) {
    if (e.type != kube::InformerEvent::Type::Upsert || !e.object) return;
    const json& pod = *e.object;
    if (pod.value(json::json_pointer("/metadata/labels/paddock.dev~1stage"), std::string()) != "agent") return;
    for (const auto& ref : pod.value(json::json_pointer("/metadata/ownerReferences"), json::array())) {
      if (ref.value("kind", "") == "AgentRun" && ref.value("controller", false)) {
        index_.markStarted(stringAt(pod, "/metadata/namespace") + "/" + ref.value("name", ""), ref.value("uid", ""));
      }
    }
  });
  network_policies_.addHandler([this](const kube::InformerEvent& e) {
    if (e.type != kube::InformerEvent::Type::Delete) return;
    std::lock_guard lock(applied_mu_);
    applied_.erase(e.key);  // applied moments ago or not, it is gone now
  });
}

std::optional<RunReconciler::NetworkPolicyWrite> RunReconciler::networkPolicyToWrite(const std::string& ns,
                                                                                    const AgentPolicy& policy) {
  NetworkPolicyWrite w{planNetworkPolicy(ns, policy, options_.plan), network_policies_.get(ns + "/" + networkPolicyName(policy)), {}, false};
  const std::string key = ns + "/" + networkPolicyName(policy);
  const std::string hash = specHashOf(w.planned);
  if (w.live) {
    w.drift = networkPolicyDrift(w.planned, *w.live);
    if (w.drift.empty()) return std::nullopt;
    w.edited = specHashOf(*w.live) == hash;
  }
  // The cache lags behind our own write: a missing one is trusted for a few seconds (several runs
  // of a team start together); a drifted one only while the cache shows an older generation than
  // the one we wrote, so an edit right after our write is still seen.
  std::lock_guard lock(applied_mu_);
  if (auto a = applied_.find(key); a != applied_.end() && a->second.hash == hash) {
    bool lagging = w.live ? intAt(*w.live, "/metadata/generation") < a->second.generation
                          : std::chrono::steady_clock::now() - a->second.at < std::chrono::seconds(5);
    if (lagging) return std::nullopt;
  }
  return w;
}

Status RunReconciler::writeNetworkPolicy(const std::string& ns, const NetworkPolicyWrite& w, const CancelToken& cancel) {
  const std::string name = stringAt(w.planned, "/metadata/name");
  // A JSON patch that puts back the spec, labels and annotations whole, only if nobody wrote in
  // between (the `test`): the operator's RBAC has patch, not update.
  json ops = json::array();
  if (w.live) {
    ops = json::array({{{"op", "test"}, {"path", "/metadata/resourceVersion"}, {"value", stringAt(*w.live, "/metadata/resourceVersion")}},
                       {{"op", "add"}, {"path", "/spec"}, {"value", w.planned["spec"]}},
                       {{"op", "add"}, {"path", "/metadata/labels"}, {"value", w.planned["metadata"]["labels"]}},
                       {{"op", "add"}, {"path", "/metadata/annotations"}, {"value", w.planned["metadata"]["annotations"]}}});
  }
  auto written = w.live ? client_.jsonPatch(kube::resources::networkpolicies, ns, name, ops, "", cancel)
                        : client_.apply(kube::resources::networkpolicies, ns, name, w.planned, options_.field_manager,
                                        true, "", cancel);
  if (!written) return written.error();
  std::lock_guard lock(applied_mu_);
  applied_[ns + "/" + name] = {specHashOf(w.planned), std::chrono::steady_clock::now(), intAt(*written, "/metadata/generation")};
  return Ok{};
}

std::optional<UsageUnavailable> RunReconciler::readUsage(const AgentRun& run, const AgentPolicy& policy, Spend& spend,
                                                        std::chrono::system_clock::time_point started,
                                                        const json& old_status, std::chrono::system_clock::time_point wall) {
  using std::chrono::milliseconds;
  // A query without a series for the run's own agent pod is unreadable usage, never zero spend.
  std::optional<std::chrono::system_clock::time_point> running_since;
  for (const auto& c : old_status.value("conditions", json::array())) {
    if (c.value("type", "") == "Running" && c.value("status", "") == "True") running_since = parseTime(c.value("lastTransitionTime", ""));
  }
  auto pod = pods_.get(run.ns + "/" + agentPodName(run));
  std::string pod_name = run.ns + "/" + agentPodName(run) + (pod ? " (uid " + stringAt(*pod, "/metadata/uid") + ")" : "");
  std::vector<UsageQueryState> states;
  for (auto [metric, query, counter, seen] : {std::tuple{Metric::Tokens, &policy.tokens_query, &spend.tokens, &spend.tokens_seen},
                                              std::tuple{Metric::CostUSD, &policy.cost_query, &spend.cost, &spend.cost_seen}}) {
    auto reading = options_.usage->read(*query, run.ns + "/" + run.name);
    UsageQueryState s{metric, *query, reading.polled};
    if (reading.polled && !reading.readable) {
      s.error = reading.error;
      s.failing_for = std::chrono::duration_cast<milliseconds>(wall - std::max(reading.unreadable_since, started));
    } else if (reading.value) {
      *counter = advance(*counter, *reading.value);
      *seen = wall;
      s.has_series = true;
    } else if (reading.polled) {
      auto since = missingSince(*seen, spend.reported_before, spend.first_look, running_since);
      s.missing_for = std::chrono::duration_cast<milliseconds>(wall - since);
    }  // not read yet (this process just started leading): no clock runs until the first answer
    states.push_back(std::move(s));
  }
  return usageUnavailable(states, pod_name);
}

BudgetDecision RunReconciler::checkBudget(const AgentRun& run, const AgentPolicy& policy, int64_t tokens_limit,
                                         int64_t cost_cents, std::chrono::milliseconds wall_clock, json& status,
                                         const json& old_status, std::chrono::system_clock::time_point wall,
                                         const std::string& now, int64_t generation) {
  using std::chrono::milliseconds;
  const std::string key = run.ns + "/" + run.name;
  const json old_usage = old_status.contains("usage") && old_status["usage"].is_object() ? old_status["usage"] : json::object();
  Spend spend;
  {
    std::lock_guard lock(spend_mu_);
    if (auto it = spend_.find(key); it != spend_.end() && it->second.uid == run.uid) {
      spend = it->second;
    } else {
      // First look since this process started: carry on from what status recorded.
      const json readings = old_usage.value("readings", json::object());
      spend = {run.uid, {numberAt(old_usage, "tokens"), numberAt(readings, "tokens")},
               {numberAt(old_usage, "costUSD"), numberAt(readings, "costUSD")}};
      spend.first_look = wall;
      spend.reported_before = spend.tokens.total > 0 || spend.cost.total > 0;
    }
  }
  auto started = parseTime(status.value("startTime", "")).value_or(wall);
  BudgetInput in;
  in.tokens_limit = tokens_limit;
  in.cost_limit_cents = cost_cents;
  in.wall_clock_limit = wall_clock;
  in.checkpoint_percent = policy.checkpoint_percent;
  in.elapsed = std::chrono::duration_cast<milliseconds>(wall - started);
  in.grace = policy.metrics_grace;
  in.continue_when_unreadable = policy.continue_without_metrics;
  in.checkpoint_requested = conditionTrue(old_status, "BudgetCheckpoint") || spend.checkpointed;
  std::optional<UsageUnavailable> unavailable;
  if (options_.usage) {
    unavailable = readUsage(run, policy, spend, started, old_status, wall);
    if (unavailable) {
      in.unreadable_for = unavailable->unreadable_for;
      in.unreadable_cause = unavailable->cause;
    }
  }
  in.tokens = spend.tokens.total;
  in.cost_usd = spend.cost.total;
  auto d = decideBudget(in);
  {
    std::lock_guard lock(spend_mu_);
    spend_[key] = spend;
  }

  if (!options_.usage) {
    setCondition(status, "BudgetMetricsAvailable", false, "NoPrometheus",
                 "the operator runs without --prometheus-url, so spec.budget.tokens and spec.budget.costUSD are not "
                 "enforced; spec.budget.wallClock is",
                 generation, now);
  } else if (unavailable) {
    setCondition(status, "BudgetMetricsAvailable", false, unavailable->reason,
                 "usage cannot be read from Prometheus: " + unavailable->cause + "; once it has been unreadable for " +
                     formatDuration(policy.metrics_grace) + " the policy's action " +
                     (policy.continue_without_metrics ? "Continue lets the run go on without token and cost limits"
                                                      : "Terminate stops the run"),
                 generation, now);
  } else {
    setCondition(status, "BudgetMetricsAvailable", true, "MetricsRead", "usage is read from Prometheus", generation, now);
  }
  if (d.checkpoint) setCondition(status, "BudgetCheckpoint", true, "CheckpointRequested", d.message, generation, now);
  if (d.exceeded) {
    setCondition(status, "BudgetExceeded", true, *d.exceeded == Metric::WallClock ? "WallClockExceeded" : "BudgetExceeded",
                 d.message, generation, now);
  }

  // Usage in status: when the spend moved, at most every usage_write_interval, and at once when
  // a threshold is crossed; the wall clock alone does not cause a write.
  json usage = {{"tokens", static_cast<int64_t>(spend.tokens.total)},
                {"costUSD", formatUSD(spend.cost.total)},
                {"wallClockSeconds", std::max<int64_t>(0, in.elapsed.count() / 1000)},
                {"observedAt", now},
                {"readings", {{"tokens", spend.tokens.last_reading}, {"costUSD", spend.cost.last_reading}}}};
  bool moved = old_usage.value("tokens", json()) != usage["tokens"] || old_usage.value("costUSD", json()) != usage["costUSD"];
  auto last = parseTime(old_usage.value("observedAt", ""));
  bool due = !last || wall - *last >= options_.usage_write_interval;
  bool crossing = d.checkpoint || d.exceeded || d.stop_unreadable;
  status["usage"] = old_usage.empty() || crossing || (moved && due) ? usage : old_usage;
  if (const auto& ratio = options_.budget_observer.ratio) {
    ratio(run.ns, run.name, "tokens", d.tokens_ratio);
    ratio(run.ns, run.name, "costUSD", d.cost_ratio);
    ratio(run.ns, run.name, "wallClock", d.wall_clock_ratio);
  }
  return d;
}

Status RunReconciler::record(const AgentRun& run, std::vector<std::pair<audit::Action, json>> records, json& status,
                             const CancelToken& cancel, const std::string& actor) {
  auto* log = audit_.load();
  if (!log || records.empty()) return Ok{};
  std::vector<audit::Entry> entries;
  for (auto& [action, details] : records) {
    entries.push_back({actor.empty() ? options_.actor : actor, {run.ns, run.name, run.uid}, action, std::move(details)});
  }
  auto appended = log->append(std::move(entries), cancel);
  if (!appended) return appended.error();
  status["audit"] = {{"sequence", appended->last_seq}, {"head", appended->last_hash}};
  return Ok{};
}

// The secrets a planned pod mounts, as SecretMounted details: names, keys and paths, never values.
static std::vector<json> secretMounts(const json& pod) {
  std::vector<json> out;
  const auto& spec = pod.value("spec", json::object());
  for (const auto& v : spec.value("volumes", json::array())) {
    if (!v.contains("secret")) continue;
    std::string volume = v.value("name", "");
    for (const auto& item : v["secret"].value("items", json::array())) {
      for (const auto& c : spec.value("containers", json::array())) {
        for (const auto& m : c.value("volumeMounts", json::array())) {
          if (m.value("name", "") != volume) continue;
          out.push_back({{"secret", v["secret"].value("secretName", "")}, {"key", item.value("key", "")},
                         {"path", m.value("mountPath", "") + "/" + item.value("path", "")},
                         {"container", c.value("name", "")}, {"stage", "agent"}});
        }
      }
    }
  }
  return out;
}

Result<bool> RunReconciler::mayApprove(const AgentRun& run, const AgentApproval& approval, const CancelToken& cancel) {
  json review = {{"apiVersion", "authorization.k8s.io/v1"},
                 {"kind", "SubjectAccessReview"},
                 {"spec", {{"user", approval.username},
                           {"groups", approval.groups},
                           {"resourceAttributes", {{"namespace", run.ns}, {"verb", "approve"}, {"group", "paddock.dev"},
                                                   {"resource", "agentruns"}, {"name", run.name}}}}}};
  auto answer = client_.create(kube::resources::subjectaccessreviews, "", review, cancel);
  if (!answer) return answer.error();
  auto allowed = answer->value(json::json_pointer("/status/allowed"), false);
  return allowed;
}

bool RunReconciler::once(const std::string& fact) {
  std::lock_guard lock(once_mu_);
  return once_.insert(fact).second;
}

void RunReconciler::forgetSpend(const AgentRun& run) {
  {
    std::lock_guard lock(spend_mu_);
    if (spend_.erase(run.ns + "/" + run.name) == 0) return;
  }
  if (options_.budget_observer.forget) options_.budget_observer.forget(run.ns, run.name);
}

Status RunReconciler::refuseStagePod(const AgentRun& run, const json& pod, const PodJudgement& trust,
                                     const AppendFn& append, const CancelToken& cancel) {
  const std::string name = stringAt(pod, "/metadata/name");
  if (trust.verdict != PodJudgement::Verdict::Tampered) {
    return append({{audit::Action::ChildNotAdopted, {{"kind", "Pod"}, {"name", name}, {"uid", stringAt(pod, "/metadata/uid")},
                                                     {"reason", "its controller owner reference does not name this run"}}}},
                  "");
  }
  if (auto a = append({{audit::Action::ChildTampered, {{"kind", "Pod"}, {"name", name}, {"fields", trust.fields}}},
                       {audit::Action::ChildDeleted, {{"kind", "Pod"}, {"name", name}, {"reason", "PodTampered"}}}},
                      "");
      !a) {
    return a;
  }
  kube::DeleteOptions del;
  del.precondition_uid = stringAt(pod, "/metadata/uid");
  if (auto r = client_.remove(kube::resources::pods, run.ns, name, del, cancel); !r && r.error().code != 404) return r;
  return Ok{};
}

Status RunReconciler::reportUnmatchedApprovals(const AgentRun& run, const std::vector<std::string>& stages, json& status,
                                               const json& old_status, int64_t generation, const std::string& now,
                                               const AppendFn& append) {
  std::vector<AgentApproval> approvals;
  for (const auto& obj : approvals_.list()) {
    if (auto a = parseAgentApproval(*obj); a && a->ns == run.ns && a->run == run.name) approvals.push_back(std::move(*a));
  }
  auto unmatched = unmatchedApprovals(run, stages, approvals);
  if (unmatched.empty() && !hasCondition(old_status, "UnmatchedApprovals")) return Ok{};
  std::string message, old_message;
  for (const auto& c : old_status.value("conditions", json::array())) {
    if (c.value("type", "") == "UnmatchedApprovals") old_message = c.value("message", "");
  }
  for (const auto& u : unmatched) {
    message += (message.empty() ? "" : "; ") + u.reason;
    if (old_message.find("AgentApproval " + u.name + " ") != std::string::npos || !once(run.uid + "/unmatched/" + u.name)) continue;
    // Once each: audited in the approver's name as not counted, and told on the run.
    std::string approver;
    for (const auto& a : approvals) {
      if (a.name == u.name) approver = a.username;
    }
    if (auto a = append({{audit::Action::ApprovalRefused, {{"stage", u.stage}, {"approval", u.name}, {"reason", "UnknownStage"}}}},
                        approver.empty() ? options_.actor : approver);
        !a) {
      return a;
    }
    if (events_) {
      events_->record(runtime::ObjectReference{"paddock.dev/v1alpha1", "AgentRun", run.ns, run.name, run.uid, ""},
                      runtime::EventType::Warning, "UnmatchedApproval", "Approve", u.reason);
    }
  }
  setCondition(status, "UnmatchedApprovals", !unmatched.empty(), unmatched.empty() ? "AllMatched" : "UnknownStage",
               unmatched.empty() ? "every AgentApproval naming this run is for one of its stages" : message, generation, now);
  return Ok{};
}

void RunReconciler::reportApprovalsOfMissingRun(const std::string& key) {
  auto slash = key.find('/');
  if (slash == std::string::npos || !events_) return;
  const std::string ns = key.substr(0, slash), name = key.substr(slash + 1);
  for (const auto& obj : approvals_.list()) {
    auto a = parseAgentApproval(*obj);
    if (!a || a->ns != ns || a->run != name) continue;
    if (!once(stringAt(*obj, "/metadata/uid") + "/no-run")) continue;
    auto ref = runtime::ObjectReference::from(*obj);
    ref.api_version = "paddock.dev/v1alpha1", ref.kind = "AgentApproval";
    events_->record(ref, runtime::EventType::Warning, "NoSuchRun", "Approve",
                    "AgentApproval " + a->name + " names AgentRun " + name + ", which does not exist in namespace " + ns +
                        "; it counts for nothing. Check spec.run, delete this approval and create one for the right run");
  }
}

void setCondition(json& status, const std::string& type, bool value, const std::string& reason,
                  const std::string& message, int64_t generation, const std::string& now) {
  if (!status.contains("conditions") || !status["conditions"].is_array()) status["conditions"] = json::array();
  json c = {{"type", type}, {"status", value ? "True" : "False"}, {"reason", reason}, {"message", message},
            {"observedGeneration", generation}, {"lastTransitionTime", now}};
  for (auto& existing : status["conditions"]) {
    if (existing.value("type", "") != type) continue;
    if (existing.value("status", "") == c["status"]) c["lastTransitionTime"] = existing.value("lastTransitionTime", now);
    existing = c;
    return;
  }
  status["conditions"].push_back(c);
}

Result<StagesInput> RunReconciler::gatherStages(const AgentRun& run, const AgentPolicy& policy, const json* agent_pod,
                                                const std::string& agent_message, const json& old_stages,
                                                std::chrono::system_clock::time_point wall, const CancelToken& cancel) {
  StagesInput si;
  si.run = &run;
  si.policy = &policy;
  si.plan = options_.plan;
  si.old_stages = old_stages;
  si.agent_message = agent_message;
  si.clone_message = observePod(agent_pod, "workspace").termination_message;
  si.now = wall;
  si.pending_deadline = options_.pending_deadline;
  for (const auto& o : approvals_.list()) {
    auto a = parseAgentApproval(*o);
    if (a && a->ns == run.ns && a->run == run.name) si.approvals.push_back(*a);
  }
  std::sort(si.approvals.begin(), si.approvals.end(), [](const auto& x, const auto& y) {
    return std::tie(x.creation_timestamp, x.name) < std::tie(y.creation_timestamp, y.name);
  });
  for (const auto& e : old_stages) {
    std::string stage = e.value("name", "");
    if (stage == "agent" || e.value("phase", "") != "Running") continue;
    const std::string name = stagePodName(run, stage);
    auto stage_pod = pods_.get(run.ns + "/" + name);
    if (!stage_pod) {  // the cache can lag behind our own create
      auto fresh = client_.get(kube::resources::pods, run.ns, name, cancel);
      if (fresh) stage_pod = std::make_shared<const json>(std::move(fresh.value()));
      else if (fresh.error().code != 404) return fresh.error();
    }
    if (stage_pod) {
      si.pods[stage] = {observePod(stage_pod.get(), "stage"), since(stringAt(*stage_pod, "/metadata/creationTimestamp"), wall)};
    }
  }
  return si;
}

Result<StagesPlan> RunReconciler::planRunStages(StagesInput in, const AgentRun& run, const CancelToken& cancel) {
  auto plan = planStages(in);
  if (plan.to_review.empty()) return plan;
  for (const auto& a : plan.to_review) {
    auto allowed = mayApprove(run, a, cancel);
    if (!allowed) return allowed.error();
    in.rbac_allows[a.name] = *allowed;
  }
  return planStages(in);
}

Status RunReconciler::startStages(const AgentRun& run, const StagesPlan& plan, const runtime::ObjectReference& regarding,
                                  Records& records, const Appender& append, const std::optional<Error>& network_policy_error,
                                  const CancelToken& cancel) {
  for (const auto& [stage, v] : plan.new_verdicts) {
    if (!once(run.uid + "/" + stage + "/" + v.name)) continue;
    // Each approval is audited once, in its approver's name, with why it did or did not count.
    json details = {{"stage", stage}, {"approval", v.name}, {"decision", v.approve ? "Approve" : "Reject"}};
    if (!v.reason.empty()) details["reason"] = v.reason;
    if (auto a = append({{v.counted ? audit::Action::ApprovalCounted : audit::Action::ApprovalRefused, details}}, v.approver);
        !a) {
      return a;
    }
    if (events_) {
      events_->record(regarding, v.counted ? runtime::EventType::Normal : runtime::EventType::Warning,
                      v.counted ? "ApprovalCounted" : "ApprovalRefused", "Approve",
                      "AgentApproval " + v.name + " by " + v.approver + " for stage " + stage +
                          (v.counted ? " counted" : " does not count: " + v.reason));
    }
  }
  for (const auto& act : plan.actions) {
    if (act.kind != StageAction::Kind::CreatePod) continue;
    // The stage's pod, recorded first.
    if (once(run.uid + "/" + act.stage + "/started")) {
      records.push_back({audit::Action::ChildCreated,
                         {{"kind", "Pod"}, {"name", act.pod_name}, {"image", stringAt(act.pod, "/spec/containers/0/image")}}});
      for (auto& m : secretMounts(act.pod)) {
        m["stage"] = act.stage;
        records.push_back({audit::Action::SecretMounted, std::move(m)});
      }
      records.push_back({audit::Action::StageStarted, {{"stage", act.stage}, {"pod", act.pod_name}}});
    }
    if (network_policy_error) return *network_policy_error;
    if (auto a = append(std::move(records), ""); !a) return a;
    records.clear();
    auto created = client_.create(kube::resources::pods, run.ns, act.pod, cancel);
    if (!created && created.error().reason != "AlreadyExists") return created.error();
  }
  return Ok{};
}

runtime::ReconcileResult RunReconciler::reconcile(const std::string& key, const CancelToken& cancel) {
  auto object = runs_.get(key);
  if (!object) {  // deleted: its children go with it
    {
      std::lock_guard lock(unwritten_mu_);
      unwritten_.erase(key);
    }
    reportApprovalsOfMissingRun(key);
    return Action::awaitChange();
  }
  const json& obj = *object;
  {
    // Our last status write may not have reached the cache yet: deciding from the older status
    // would repeat what that write recorded. Wait briefly until the cache shows it (or someone
    // else's newer write replaced it).
    std::lock_guard lock(written_mu_);
    if (auto w = written_.find(key); w != written_.end()) {
      if (stringAt(obj, "/metadata/resourceVersion") != w->second.first &&
          std::chrono::steady_clock::now() - w->second.second < std::chrono::seconds(2)) {
        return Action::requeueAfter(std::chrono::milliseconds(50));
      }
      written_.erase(w);
    }
  }
  const json cached_status = obj.contains("status") && obj["status"].is_object() ? obj["status"] : json::object();
  // The status of a run whose pod this process created and has not written yet (see below):
  // decide from it, and write it with whatever the pod shows now.
  std::optional<json> unwritten;
  {
    std::lock_guard lock(unwritten_mu_);
    if (auto u = unwritten_.find(key); u != unwritten_.end()) {
      bool current = u->second.uid == stringAt(obj, "/metadata/uid") &&
                     stringAt(cached_status, "/stages/0/pod").empty();
      if (current) unwritten = u->second.status;
      else unwritten_.erase(u);
    }
  }
  const json old_status = unwritten ? *unwritten : cached_status;
  json status = old_status;
  auto wall = std::chrono::system_clock::now();
  std::string now = formatMicroTime(wall).substr(0, 19) + "Z";
  auto generation = intAt(obj, "/metadata/generation");
  auto regarding = runtime::ObjectReference::from(obj);
  std::string old_phase = old_status.value("phase", "");
  std::string ns = stringAt(obj, "/metadata/namespace");
  std::string name = stringAt(obj, "/metadata/name");

  // Audit records go before the actions they describe. Those that need not go at once (the run
  // admitted, the team's NetworkPolicy applied) wait here for the next append or the status
  // write, so the common path makes one durable append, not three.
  Result<AgentRun> run = parseAgentRun(obj);
  std::vector<std::pair<audit::Action, json>> pending;
  auto append = [&](std::vector<std::pair<audit::Action, json>> records, const std::string& actor = "") -> Status {
    if (!run) return Ok{};
    if (actor.empty()) {
      records.insert(records.begin(), std::make_move_iterator(pending.begin()), std::make_move_iterator(pending.end()));
    } else if (!pending.empty()) {
      if (auto a = record(*run, std::move(pending), status, cancel); !a) return a;
    }
    pending.clear();
    return record(*run, std::move(records), status, cancel, actor);
  };

  // Writes the status when it changed, then tells people about a phase change.
  auto finish = [&](const std::string& reason, const std::string& message,
                    Action next) -> runtime::ReconcileResult {
    if (!pending.empty()) {
      if (auto a = append({}); !a) return runtime::reconcileErrorFrom(a.error());
    }
    status["observedGeneration"] = generation;
    if (status == cached_status) return next;
    json updated = obj;
    updated["status"] = status;
    auto written = client_.replace(kube::resources::agentruns, ns, name, updated, "status", cancel);
    if (!written) return runtime::reconcileErrorFrom(written.error());
    {
      std::lock_guard lock(written_mu_);
      written_[key] = {stringAt(*written, "/metadata/resourceVersion"), std::chrono::steady_clock::now()};
    }
    if (unwritten) {
      std::lock_guard lock(unwritten_mu_);
      unwritten_.erase(key);
    }
    std::string phase = status.value("phase", "");
    // An Event when the pod is created, when the run ends, and whenever something goes wrong;
    // routine progress (the pod starting, the agent running) is in status and costs no write.
    bool routine = reason == "PodStarting" || reason == "AgentRunning";
    if (events_ && phase != old_phase && !routine) {
      bool bad = phase == "Failed" || phase == "TimedOut" || phase == "BudgetExceeded" ||
                 (phase == "Pending" && !reason.empty() && reason != "WaitingForSlot" && reason != "Admitted");
      events_->record(regarding, bad ? runtime::EventType::Warning : runtime::EventType::Normal, reason,
                      phase.empty() ? "Reconcile" : phase, message);
    }
    log::info("run status", {{"key", key}, {"phase", phase}, {"reason", reason}, {"message", message}});
    return next;
  };

  if (run && unwritten) run->started = true;
  if (!run) {
    status["phase"] = "Pending";
    setCondition(status, "Admitted", false, "InvalidSpec", run.error().message, generation, now);
    return finish("InvalidSpec", run.error().message, Action::awaitChange());
  }
  if (isTerminal(run->phase)) {
    forgetSpend(*run);
    // A finished run keeps no live pod (the decision is written before the pod is deleted, so a
    // restart between the two lands here).
    std::vector<std::string> names = {agentPodName(*run)};
    for (const auto& stage : run->stages) names.push_back(stagePodName(*run, stage));
    for (const auto& pod_name : names) {
      auto pod = pods_.get(ns + "/" + pod_name);
      auto seen = observePod(pod.get());
      // Only the run's own pods: never someone else's pod under one of its names.
      bool ours = pod && (ownedBy(*pod, run->uid) ||
                          (pod_name == agentPodName(*run) &&
                           stringAt(*pod, "/metadata/uid") == stringAt(cached_status, "/stages/0/podUID")));
      if (!ours || seen.deleting || (seen.phase != "Pending" && seen.phase != "Running")) continue;
      kube::DeleteOptions del;
      del.grace_period_seconds = static_cast<int>(options_.plan.termination_grace.count());
      del.precondition_uid = stringAt(*pod, "/metadata/uid");
      if (auto r = client_.remove(kube::resources::pods, ns, pod_name, del, cancel); !r && r.error().code != 404) {
        return runtime::reconcileErrorFrom(r.error());
      }
    }
    return Action::awaitChange();
  }

  // Gather the policies and decide which one governs the run's namespace.
  std::vector<AgentPolicy> policies;
  for (const auto& p : policies_.list()) {
    if (auto parsed = parseAgentPolicy(*p)) policies.push_back(std::move(parsed.value()));
    else log::warn("ignoring an AgentPolicy that cannot be read", {{"key", kube::objectKey(*p)}, {"error", parsed.error().message}});
  }
  auto ns_obj = namespaces_.get(ns);
  auto choice = resolvePolicy(ns, ns_obj ? labelsOf(*ns_obj) : std::map<std::string, std::string>{}, policies);
  // Admission decides whether the run may start; once its pod exists it is cared for under the
  // terms recorded then (controllers/terms.h), whatever the policy says now.
  TermsInput terms_in;
  terms_in.run = &*run;
  terms_in.recorded = parseTerms(old_status);
  terms_in.choice = &choice;
  for (const auto& p : policies) {
    if (terms_in.recorded && p.name == terms_in.recorded->policy) terms_in.admitted_under = &p;
  }
  auto cached_pod = pods_.get(ns + "/" + agentPodName(*run));
  terms_in.started = run->started || (cached_pod && ownedBy(*cached_pod, run->uid));
  auto terms = decideTerms(terms_in);
  auto old_admitted = [&]() -> json {
    for (const auto& c : old_status.value("conditions", json::array())) {
      if (c.value("type", "") == "Admitted") return c;
    }
    return json::object();
  }();
  if (!terms.admitted && terms_in.started) {
    // Started, with no terms to care for it under: stopped (the finished run's pod goes next).
    status["phase"] = "Failed";
    setCondition(status, "Succeeded", false, terms.reason, terms.message, generation, now);
    status["completionTime"] = now;
    if (auto a = append({{audit::Action::RunFinished, {{"phase", "Failed"}, {"reason", terms.reason}, {"message", terms.message}}}});
        !a) {
      return runtime::reconcileErrorFrom(a.error());
    }
    return finish(terms.reason, terms.message, Action::awaitChange());
  }
  if (!terms.admitted) {
    status["phase"] = "Pending";
    setCondition(status, "Admitted", false, terms.reason, terms.message, generation, now);
    if (choice.policy && old_admitted.value("reason", "") != terms.reason) {
      if (auto a = append({{audit::Action::RunRefused, {{"policy", choice.policy->name}, {"reason", terms.reason},
                                                               {"message", terms.message}}}}); !a) {
        return runtime::reconcileErrorFrom(a.error());
      }
    }
    return finish(terms.reason, terms.message, Action::awaitChange());
  }
  const AgentPolicy& policy = terms.policy;
  const Effective& effective = terms.terms.effective;
  if (terms_in.started) run->stages = terms.terms.stages;  // the stages it was admitted with
  status["policy"] = policy.name;
  status["terms"] = termsJson(terms.terms);
  if (terms.policy_changed || hasCondition(old_status, "PolicyChanged")) {
    setCondition(status, "PolicyChanged", terms.policy_changed, terms.policy_changed ? terms.changed_reason : "PolicyUnchanged",
                 terms.policy_changed ? terms.changed_message : "the run's policy would grant the terms it runs under",
                 generation, now);
    if (terms.policy_changed && !conditionTrue(old_status, "PolicyChanged") && events_) {
      events_->record(regarding, runtime::EventType::Warning, "PolicyChanged", "Admit", terms.changed_message);
    }
  }
  setCondition(status, "Admitted", true, "Admitted", terms.message, generation, now);
  if (old_admitted.value("status", "") != "True") {
    const auto& e = effective;
    json details = {{"policy", policy.name}, {"task", run->task}, {"repository", run->repository_url},
                    {"baseBranch", run->base_branch}, {"image", e.image}, {"model", e.model},
                    {"budget", {{"tokens", e.tokens}, {"costUSD", formatCents(e.cost_cents)},
                                {"wallClock", formatDuration(e.wall_clock)}}},
                    {"stages", run->stages}};
    pending.push_back({audit::Action::RunAdmitted, details});
  }
  // Approvals for a stage the run did not ask for: reported here, never counted (issue 25).
  if (auto r = reportUnmatchedApprovals(*run, run->stages, status, old_status, generation, now, append); !r) {
    return runtime::reconcileErrorFrom(r.error());
  }
  // The team's NetworkPolicy in this namespace, before any pod of the run exists and for as long
  // as one may (a deleted one comes back), recorded before it is applied. A failure holds back only
  // the creation of pods: a live run is still looked after.
  std::optional<Error> network_policy_error;
  if (auto w = networkPolicyToWrite(ns, policy)) {
    // Missing: created (or put back). Drifted: replaced with the plan, the fields that differed
    // recorded, and an edit (content that is not the plan its hash annotation claims) told as a
    // Warning on the NetworkPolicy itself.
    json details = {{"kind", "NetworkPolicy"}, {"name", networkPolicyName(policy)}, {"sharedBy", "AgentPolicy " + policy.name}};
    if (w->live) details.update({{"fields", w->drift}, {"reason", w->edited ? "Edited" : "PlanChanged"}});
    if (auto a = append({{w->live ? audit::Action::ChildRestored : audit::Action::ChildCreated, details}}); !a) {
      return runtime::reconcileErrorFrom(a.error());
    }
    if (auto r = writeNetworkPolicy(ns, *w, cancel); !r) {
      network_policy_error = r.error();
      log::warn("cannot apply the team's NetworkPolicy; no pod of the team's runs starts here until it is",
                {{"key", key}, {"networkPolicy", networkPolicyName(policy)}, {"error", r.error().describe()}});
    } else if (w->edited) {
      auto ref = runtime::ObjectReference::from(*w->live);
      ref.api_version = "networking.k8s.io/v1", ref.kind = "NetworkPolicy";
      std::string message = "NetworkPolicy " + networkPolicyName(policy) + " was edited away from its plan (" +
                            joinFields(w->drift) + "); Paddock put back the rules of AgentPolicy " + policy.name +
                            ". Change egress in the AgentPolicy, not here";
      if (events_) events_->record(ref, runtime::EventType::Warning, "NetworkPolicyRestored", "Restore", message);
      log::warn("restored an edited NetworkPolicy", {{"key", key}, {"networkPolicy", networkPolicyName(policy)},
                                                     {"fields", joinFields(w->drift)}});
    }
  }
  if (hostEgressUnenforced(policy)) {
    setCondition(status, "HostEgressEnforced", false, "NoFQDNSupport",
                 "the policy's host egress rules (spec.egress[].host) are not enforced: the team's NetworkPolicy "
                 "enforces only spec.egress[].cidr, so allow the hosts' addresses as CIDR rules where they must be reached",
                 generation, now);
  }

  // The agent pod, and whether the run holds a slot to create it.
  auto pod = cached_pod;
  bool pod_created = run->started;
  if (!pod && pod_created) {
    // The pod cache can lag behind our own writes, and holds only pods with Paddock's label: ask
    // the API server before concluding the pod is gone.
    auto fresh = client_.get(kube::resources::pods, ns, agentPodName(*run), cancel);
    if (fresh) pod = std::make_shared<const json>(std::move(fresh.value()));
    else if (fresh.error().code != 404) return runtime::reconcileErrorFrom(fresh.error());
  }
  // Whose the pod under that name is, and whether it still matches its plan (docs/trust.md): the
  // run recorded its UID and the plan's fingerprint when it created it.
  json old_agent = json::object();
  for (const auto& e : old_status.value("stages", json::array())) {
    if (e.value("name", "") == "agent") old_agent = e;
  }
  std::string pod_uid = old_agent.value("podUID", "");
  json pod_plan = old_agent.value("planned", json::object());
  auto trust = judgePod(pod.get(), run->uid, pod_uid, pod_plan);
  if (trust.verdict == PodJudgement::Verdict::Ours && pod_uid.empty()) {
    // Created by a process that stopped before writing it down: its owner reference says it is
    // the run's; it must match the plan all the same.
    pod_uid = stringAt(*pod, "/metadata/uid");
    if (pod_plan.empty()) {
      pod_plan = podFingerprint(planAgentPod(*run, policy, effective, options_.plan));
      // A pod made by an operator from before the run-UID label: its owner reference carries the UID.
      const std::string uid_label = std::string("metadata.labels[\"") + kLabelRunUid + "\"]";
      if (!podFingerprint(*pod).contains(uid_label)) pod_plan.erase(uid_label);
    }
    trust = judgePod(pod.get(), run->uid, pod_uid, pod_plan);
  }
  if (!pod && !pod_created && !run->cancel && !run->idempotency_key.empty()) {
    auto original = findOriginal(*run, index_.withIdempotencyKey(ns, run->idempotency_key));
    if (original.found && isTerminal(original.phase)) {
      std::string message = "spec.idempotencyKey " + run->idempotency_key + " was already run by AgentRun " + original.name +
                            " (" + original.phase + "); this run ends as it did without running the task again";
      status["phase"] = original.phase;
      setCondition(status, "Running", false, "IdempotencyKeyDone", message, generation, now);
      setCondition(status, "Succeeded", original.phase == "Succeeded", "IdempotencyKeyDone", message, generation, now);
      status["completionTime"] = status.value("completionTime", now);
      return finish("IdempotencyKeyDone", message, Action::awaitChange());
    }
    if (original.found) {
      std::string message = "spec.idempotencyKey " + run->idempotency_key + " is being run by AgentRun " + original.name +
                            "; this run waits for it and ends as it does";
      status["phase"] = "Pending";
      setCondition(status, "Running", false, "IdempotencyKeyInProgress", message, generation, now);
      return finish("IdempotencyKeyInProgress", message, Action::requeueAfter(options_.slot_recheck));
    }
  }
  if (!pod && !pod_created && !run->cancel) {
    auto slot = index_.slot(*run, policy.max_running, [&](const std::string& other) {
      if (other == ns) return true;
      auto other_ns = namespaces_.get(other);
      return other_ns && policy.namespace_selector.matches(labelsOf(*other_ns));
    });
    if (!slot.may_start) {
      status["phase"] = "Pending";
      setCondition(status, "Running", false, "WaitingForSlot", slot.message, generation, now);
      return finish("WaitingForSlot", slot.message, Action::requeueAfter(options_.slot_recheck));
    }
  }

  LifecycleInput in;
  in.phase = run->phase;
  in.cancel = run->cancel;
  in.pod_created = pod_created;
  in.pod_name = agentPodName(*run);
  in.trust = trust;
  in.pod = observePod(trust.verdict == PodJudgement::Verdict::NotOurs ? nullptr : pod.get());
  in.pending_deadline = options_.pending_deadline;
  if (pod) in.pod_pending_for = since(stringAt(*pod, "/metadata/creationTimestamp"), wall);
  auto d = decideLifecycle(in);

  // Gated stages: once the agent has succeeded, planStages (controllers/stages.h) decides; this
  // gathers what it reads and carries out what it asks.
  auto old_stages = old_status.value("stages", json::array());
  bool agent_done = std::any_of(old_stages.begin(), old_stages.end(), [](const json& e) {
    return e.value("name", "") == "agent" && e.value("phase", "") == "Succeeded";
  });
  if (!run->stages.empty() && (agent_done || d.phase == "Succeeded")) {
    auto gathered = gatherStages(*run, policy, pod.get(), d.message, old_stages, wall, cancel);
    if (!gathered) return runtime::reconcileErrorFrom(gathered.error());
    auto planned = planRunStages(std::move(*gathered), *run, cancel);
    if (!planned) return runtime::reconcileErrorFrom(planned.error());
    StagesPlan& plan = *planned;
    auto records = std::move(plan.records);
    if (auto started = startStages(*run, plan, regarding, records, append, network_policy_error, cancel); !started) {
      return runtime::reconcileErrorFrom(started.error());
    }
    for (const auto& act : plan.actions) {
      if (act.kind == StageAction::Kind::DeletePod) {
        records.push_back({audit::Action::ChildDeleted, {{"kind", "Pod"}, {"name", act.pod_name}, {"reason", act.reason}}});
      }
    }
    status["stages"] = plan.stages;
    status["phase"] = plan.phase;
    if (plan.current.empty()) status.erase("currentStage");
    else status["currentStage"] = plan.current;
    if (plan.pull_request_url.empty()) status.erase("pullRequestURL");
    else status["pullRequestURL"] = plan.pull_request_url;
    bool waiting = plan.phase == "AwaitingApproval";
    setCondition(status, "AwaitingApproval", waiting, waiting ? plan.reason : "NotWaiting",
                 waiting ? plan.message : "no stage is waiting for approval", generation, now);
    setCondition(status, "Running", plan.phase == "Running", plan.reason, plan.message, generation, now);
    if (isTerminal(plan.phase)) {
      setCondition(status, "Succeeded", plan.phase == "Succeeded", plan.reason, plan.message, generation, now);
      status["completionTime"] = status.value("completionTime", now);
      records.push_back({audit::Action::RunFinished, {{"phase", plan.phase}, {"reason", plan.reason}, {"message", plan.message}}});
    }
    if (auto a = append(std::move(records)); !a) return runtime::reconcileErrorFrom(a.error());
    // Write-ahead: the decision is recorded before a pod goes.
    auto written = finish(plan.reason, plan.message,
                          plan.requeue_after ? Action::requeueAfter(*plan.requeue_after) : Action::awaitChange());
    if (std::holds_alternative<ReconcileError>(written)) return written;
    for (const auto& act : plan.actions) {
      if (act.kind != StageAction::Kind::DeletePod) continue;
      kube::DeleteOptions del;
      del.grace_period_seconds = static_cast<int>(options_.plan.termination_grace.count());
      if (auto r = client_.remove(kube::resources::pods, ns, act.pod_name, del, cancel); !r && r.error().code != 404) {
        return runtime::reconcileErrorFrom(r.error());
      }
    }
    return written;
  }

  std::optional<std::chrono::milliseconds> budget_recheck;
  if (d.phase == "Running" && !d.delete_pod) {
    auto b = checkBudget(*run, policy, effective.tokens, effective.cost_cents,
                         effective.wall_clock, status, old_status, wall, now, generation);
    budget_recheck = b.recheck_after;
    if (b.exceeded || b.stop_unreadable) {
      json spent = status.value("usage", json::object());
      spent.erase("readings");
      if (auto a = append({{audit::Action::BudgetExceeded,
                                  {{"budget", b.exceeded ? metricName(*b.exceeded) : "metrics"},
                                   {"spent", spent}, {"message", b.message}}}}); !a) {
        return runtime::reconcileErrorFrom(a.error());
      }
      bool wall_clock = b.exceeded == Metric::WallClock;
      d.phase = wall_clock ? "TimedOut" : b.exceeded ? "BudgetExceeded" : "Failed";
      d.reason = wall_clock ? "WallClockExceeded" : b.exceeded ? "BudgetExceeded" : "MetricsUnavailable";
      d.message = b.message;
      d.delete_pod = true;
      if (options_.budget_observer.termination) {
        options_.budget_observer.termination(b.exceeded ? std::string("BudgetExceeded:") + metricName(*b.exceeded)
                                                        : "MetricsUnavailable");
      }
    } else if (b.checkpoint) {
      // The request reaches the agent as a file of its downward-API volume; the condition is
      // written after, so a crash in between asks again (the patch is idempotent).
      if (auto a = append({{audit::Action::CheckpointRequested,
                                  {{"budget", metricName(*b.checkpoint)}, {"message", b.message}}}}); !a) {
        return runtime::reconcileErrorFrom(a.error());
      }
      std::string value = std::string(metricName(*b.checkpoint)) + " " +
                          std::to_string(static_cast<int>(100 * std::max({b.tokens_ratio, b.cost_ratio, b.wall_clock_ratio}))) + "%";
      auto patched = client_.mergePatch(kube::resources::pods, ns, agentPodName(*run),
                                        {{"metadata", {{"annotations", {{"paddock.dev/checkpoint", value}}}}}}, "", cancel);
      if (!patched && patched.error().code != 404) return runtime::reconcileErrorFrom(patched.error());
      {
        std::lock_guard lock(spend_mu_);
        spend_[key].checkpointed = true;
      }
      if (events_) events_->record(regarding, runtime::EventType::Normal, "CheckpointRequested", "Checkpoint", b.message);
      if (options_.budget_observer.checkpoint) options_.budget_observer.checkpoint(metricName(*b.checkpoint));
      log::info("checkpoint requested", {{"key", key}, {"budget", metricName(*b.checkpoint)}, {"message", b.message}});
    }
  }
  if (isTerminal(d.phase)) forgetSpend(*run);

  if (d.create_pod) {
    if (network_policy_error) return runtime::reconcileErrorFrom(*network_policy_error);
    if (!run->stages.empty()) {
      // The workspace the gated stages share outlives the agent pod; the run owns it.
      if (auto r = client_.apply(kube::resources::persistentvolumeclaims, ns, workspaceClaimName(*run),
                                 planWorkspaceClaim(*run, policy, options_.plan), options_.field_manager, true, "", cancel);
          !r) {
        return runtime::reconcileErrorFrom(r.error());
      }
    }
    auto planned = planAgentPod(*run, policy, effective, options_.plan);
    if (!run->started) {
      std::vector<std::pair<audit::Action, json>> records;
      if (!run->stages.empty()) {
        records.push_back({audit::Action::ChildCreated, {{"kind", "PersistentVolumeClaim"}, {"name", workspaceClaimName(*run)}}});
      }
      records.push_back(
          {audit::Action::ChildCreated, {{"kind", "Pod"}, {"name", agentPodName(*run)}, {"image", effective.image}}});
      for (auto& m : secretMounts(planned)) records.push_back({audit::Action::SecretMounted, std::move(m)});
      records.push_back({audit::Action::StageStarted, {{"stage", "agent"}, {"pod", agentPodName(*run)}}});
      if (auto a = append(std::move(records)); !a) return runtime::reconcileErrorFrom(a.error());
    }
    auto created = client_.create(kube::resources::pods, ns, planned, cancel);
    if (!created && created.error().reason != "AlreadyExists") {
      auto e = runtime::reconcileErrorFrom(created.error());
      if (e.kind == ReconcileError::Kind::Terminal) {
        status["phase"] = "Failed";
        setCondition(status, "Succeeded", false, "PodRejected", "the API server refused the agent pod: " + created.error().message,
                     generation, now);
        status["completionTime"] = now;
        return finish("PodRejected", "the API server refused the agent pod: " + created.error().message, Action::awaitChange());
      }
      return e;
    }
    // The name was taken: by this run's own earlier attempt only if the pod says so by its owner
    // reference; anyone else's pod is never adopted.
    json made = created ? std::move(created.value()) : json();
    if (!created) {
      auto existing = client_.get(kube::resources::pods, ns, agentPodName(*run), cancel);
      if (!existing) return runtime::reconcileErrorFrom(existing.error());  // gone meanwhile: look again
      made = std::move(existing.value());
    }
    auto made_trust = judgePod(&made, run->uid, created ? stringAt(made, "/metadata/uid") : "", json::object());
    if (made_trust.verdict == PodJudgement::Verdict::NotOurs) {
      trust = made_trust;
      d = *decideTrust(trust, agentPodName(*run));
      pod = std::make_shared<const json>(std::move(made));
    } else {
      pod_uid = stringAt(made, "/metadata/uid");
      pod_plan = podFingerprint(planned);
      status["startTime"] = status.value("startTime", now);
    }
  }
  status["phase"] = d.phase;
  status["currentStage"] = "agent";
  json stage = {{"name", "agent"}, {"phase", d.phase}, {"pod", agentPodName(*run)}, {"message", d.message}};
  if (!pod_uid.empty()) stage["podUID"] = pod_uid;
  if (!pod_plan.empty()) stage["planned"] = pod_plan;
  bool not_ours = trust.verdict == PodJudgement::Verdict::NotOurs;
  if ((!pod_created && !d.create_pod && !pod) || (not_ours && !pod_created)) stage.erase("pod");
  if (pod && !not_ours && !status.contains("startTime")) {
    // Created by a process that stopped before writing it down: the pod says when.
    status["startTime"] = stringAt(*pod, "/metadata/creationTimestamp");
  }
  status["stages"] = json::array({stage});
  setCondition(status, "Running", d.phase == "Running", d.reason, d.message, generation, now);
  if (isTerminal(d.phase)) {
    setCondition(status, "Succeeded", d.phase == "Succeeded", d.reason, d.message, generation, now);
    status["completionTime"] = status.value("completionTime", now);
    std::vector<std::pair<audit::Action, json>> records;
    if (not_ours) {
      records.push_back({audit::Action::ChildNotAdopted, {{"kind", "Pod"}, {"name", agentPodName(*run)},
                                                          {"uid", stringAt(*pod, "/metadata/uid")},
                                                          {"reason", "its controller owner reference does not name this run"}}});
    }
    if (trust.verdict == PodJudgement::Verdict::Tampered) {
      records.push_back({audit::Action::ChildTampered, {{"kind", "Pod"}, {"name", agentPodName(*run)}, {"fields", trust.fields}}});
    }
    if (d.delete_pod && pod) {
      records.push_back({audit::Action::ChildDeleted, {{"kind", "Pod"}, {"name", agentPodName(*run)}, {"reason", d.reason}}});
    }
    json spent = status.value("usage", json::object());
    spent.erase("readings");
    records.push_back({audit::Action::StageFinished, {{"stage", "agent"}, {"phase", d.phase}, {"reason", d.reason}}});
    records.push_back({audit::Action::RunFinished,
                       {{"phase", d.phase}, {"reason", d.reason}, {"message", d.message}, {"spent", spent}}});
    if (auto a = append(std::move(records)); !a) return runtime::reconcileErrorFrom(a.error());
  }
  // A pod still Pending is looked at again when its deadline falls due, and every slot_recheck
  // after that, so a reason that shows up late (the scheduler's verdict, a pull error) is seen.
  Action next = Action::awaitChange();
  if (in.pod.exists && in.pod.phase == "Pending" && !isTerminal(d.phase)) {
    auto left = in.pod_pending_for < options_.pending_deadline ? options_.pending_deadline - in.pod_pending_for
                                                               : options_.slot_recheck;
    next = Action::requeueAfter(std::chrono::duration_cast<std::chrono::milliseconds>(std::min(left, options_.slot_recheck)));
  }
  if (budget_recheck && !isTerminal(d.phase)) {
    auto at = std::max(*budget_recheck, std::chrono::milliseconds(1));
    if (!next.requeue_after || at < *next.requeue_after) next = Action::requeueAfter(at);
  }
  if (d.create_pod && status.value("phase", "") == "Pending") {
    // The pod was just created. Its status is written when the pod's own event brings the run
    // back (by then usually Running): one write fewer per run. Until then this process decides
    // from the status it holds here and counts the run as holding its slot; after a restart the
    // pod in the cache says the same. The Event goes now.
    {
      std::lock_guard lock(unwritten_mu_);
      status["observedGeneration"] = generation;
      unwritten_[key] = {run->uid, status};
    }
    index_.markStarted(key, run->uid);
    if (events_) events_->record(regarding, runtime::EventType::Normal, d.reason, "Pending", d.message);
    log::info("run status", {{"key", key}, {"phase", "Pending"}, {"reason", d.reason}, {"message", d.message},
                             {"written", "with the pod's first event"}});
    // The pod's event normally comes first; this is the fallback.
    return Action::requeueAfter(std::chrono::seconds(5));
  }
  if (!d.delete_pod || !pod) return finish(d.reason, d.message, next);
  // Write-ahead: the decision is recorded before the pod goes, so it survives whatever happens next.
  auto written = finish(d.reason, d.message, next);
  if (std::holds_alternative<ReconcileError>(written)) return written;
  kube::DeleteOptions del;
  del.grace_period_seconds = static_cast<int>(options_.plan.termination_grace.count());
  del.precondition_uid = stringAt(*pod, "/metadata/uid");
  if (auto r = client_.remove(kube::resources::pods, ns, agentPodName(*run), del, cancel); !r && r.error().code != 404) {
    return runtime::reconcileErrorFrom(r.error());
  }
  return written;
}

}  // namespace paddock::controllers
