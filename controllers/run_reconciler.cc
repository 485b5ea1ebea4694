#include "controllers/run_reconciler.h"

#include <algorithm>

#include <openssl/rand.h>

#include "controllers/gateway.h"
#include "controllers/stages.h"
#include "operator/audit/blob.h"

#include "operator/audit/record.h"
#include "operator/common/json.h"
#include "operator/common/log.h"
#include "operator/common/timestamp.h"

namespace paddock::controllers {
namespace {

using runtime::Action;
using runtime::ReconcileError;

// Whether a run object holds a concurrency slot, read from the two fields that say so (no parse
// of the whole run: this runs for every event of every run).
bool heldSlot(const kube::ObjectPtr& o) {
  if (!o) return false;
  AgentRun r;
  r.phase = o->value(json::json_pointer("/status/phase"), std::string());
  r.started = !o->value(json::json_pointer("/status/stages/0/pod"), std::string()).empty();
  return holdsSlot(r);
}

// A fresh gateway credential: 32 random bytes as hex, and its SHA-256 (what the gateway sees).
std::optional<TeamFacts::Credential> freshCredential() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return std::nullopt;
  static const char* hex = "0123456789abcdef";
  std::string token;
  for (unsigned char b : bytes) token += {hex[b >> 4], hex[b & 15]};
  return TeamFacts::Credential{token, audit::blobHash(token).substr(7)};
}

PlanClock clockNow() {
  auto wall = std::chrono::system_clock::now();
  return {wall, std::chrono::steady_clock::now(), formatMicroTime(wall).substr(0, 19) + "Z"};
}

}  // namespace

std::vector<std::string> runsWaitingForSlot(const kube::InformerEvent& event, const RunIndex& runs) {
  bool freed = event.type == kube::InformerEvent::Type::Delete ? heldSlot(event.object)
                                                                : heldSlot(event.old) && !heldSlot(event.object);
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

RunPlanSettings RunReconciler::settings() const {
  return {options_.plan,          options_.usage != nullptr,  options_.usage_write_interval,
          options_.pending_deadline, options_.slot_recheck, options_.actor};
}

// ---------------------------------------------------------------------------------------------
// gather

std::variant<RunSnapshot, runtime::ReconcileResult> RunReconciler::gather(const std::string& key,
                                                                          const CancelToken& cancel) {
  auto object = runs_.get(key);
  if (!object) return Action::awaitChange();
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
  RunSnapshot s;
  s.key = key, s.ns = stringAt(obj, "/metadata/namespace"), s.name = stringAt(obj, "/metadata/name");
  s.object = object;
  s.generation = intAt(obj, "/metadata/generation");
  s.regarding = runtime::ObjectReference::from(obj);
  s.cached_status = obj.contains("status") && obj["status"].is_object() ? obj["status"] : json::object();
  s.old_status = s.cached_status;
  bool unwritten = false;
  {
    // The status of a run whose pod this process created and has not written yet: decide from
    // it, and write it with whatever the pod shows now.
    std::lock_guard lock(unwritten_mu_);
    if (auto u = unwritten_.find(key); u != unwritten_.end()) {
      bool current = u->second.uid == stringAt(obj, "/metadata/uid") && stringAt(s.cached_status, "/stages/0/pod").empty();
      if (current) s.old_status = u->second.status, s.deferred_since = u->second.since, unwritten = true;
      else unwritten_.erase(u);
    }
  }
  s.run = parseAgentRun(obj);
  if (!s.run) return s;
  AgentRun& run = *s.run;
  if (unwritten) run.started = true;
  {
    std::lock_guard lock(facts_mu_);
    if (auto f = facts_.find(run.uid); f != facts_.end()) s.recent_facts = f->second;
  }
  if (isTerminal(run.phase)) {
    s.run_pods[agentPodName(run)] = pods_.get(s.ns + "/" + agentPodName(run));
    for (const auto& stage : run.stages) s.run_pods[stagePodName(run, stage)] = pods_.get(s.ns + "/" + stagePodName(run, stage));
    return s;
  }
  for (const auto& p : policies_.list()) {
    if (auto parsed = parseAgentPolicy(*p)) s.policies.push_back(std::move(parsed.value()));
    else log::warn("ignoring an AgentPolicy that cannot be read", {{"key", kube::objectKey(*p)}, {"error", parsed.error().message}});
  }
  if (auto ns_obj = namespaces_.get(s.ns)) s.namespace_labels = labelsOf(*ns_obj);
  s.agent_pod = pods_.get(s.ns + "/" + agentPodName(run));
  if (!s.agent_pod && run.started) {
    // The pod cache can lag behind our own writes, and holds only pods with Paddock's label: ask
    // the API server before concluding the pod is gone.
    auto fresh = client_.get(kube::resources::pods, s.ns, agentPodName(run), cancel);
    if (fresh) s.agent_pod = std::make_shared<const json>(std::move(fresh.value()));
    else if (fresh.error().code != 404) return runtime::ReconcileResult(runtime::reconcileErrorFrom(fresh.error()));
  }
  for (const auto& o : approvals_.list()) {
    auto a = parseAgentApproval(*o);
    if (a && a->ns == s.ns && a->run == s.name) s.approvals.push_back(std::move(*a));
  }
  return s;
}

Result<TeamFacts> RunReconciler::gatherTeam(const RunSnapshot& snap, const Admitted& a, const CancelToken& cancel) {
  TeamFacts t;
  const AgentRun& run = a.run;
  const std::string np_key = snap.ns + "/" + networkPolicyName(a.policy);
  t.network_policy = network_policies_.get(np_key);
  {
    std::lock_guard lock(applied_mu_);
    if (auto it = applied_.find(np_key); it != applied_.end()) t.applied = it->second;
  }
  t.slot.may_start = true;
  if (!snap.agent_pod && !run.started && !run.cancel) {
    if (!run.idempotency_key.empty()) t.same_key = index_.withIdempotencyKey(snap.ns, run.idempotency_key);
    // A finished original that was deleted since: the ledger remembers it for the policy's retention.
    auto gone = options_.ledger ? options_.ledger->finished(snap.ns, run.idempotency_key, a.policy.idempotency_retention,
                                                            std::chrono::system_clock::now())
                                : std::nullopt;
    if (gone && std::none_of(t.same_key.begin(), t.same_key.end(), [&](const AgentRun& r) { return r.uid == gone->uid; })) {
      t.same_key.push_back(std::move(*gone));
    }
    // Taken atomically with the decision (the run index): reconcile releases it unless the pod was made.
    t.slot = index_.reserve(run, a.policy.max_running, [&](const std::string& other) {
      if (other == snap.ns) return true;
      auto other_ns = namespaces_.get(other);
      return other_ns && a.policy.namespace_selector.matches(labelsOf(*other_ns));
    });
  }
  if (snap.agent_pod) {
    {
      std::lock_guard lock(spend_mu_);
      if (auto it = spend_.find(snap.key); it != spend_.end()) t.spend = it->second;
    }
    if (options_.usage) {
      t.tokens = options_.usage->read(a.policy.tokens_query, snap.key);
      t.cost = options_.usage->read(a.policy.cost_query, snap.key);
      if (a.policy.gateway) {
        for (const auto& [reason, n] : options_.usage->readAll(std::string(kGatewayRefusalsQuery) + "\n", snap.key)) {
          if (n >= 1) t.refusals[reason] = static_cast<int64_t>(n);
        }
      }
    }
  }
  if (!run.stages.empty()) {
    if (auto s = gatherStagePods(snap, t, cancel); !s) return s.error();
  }
  if (a.policy.gateway) {
    if (!gatewayRunOf(run.name, snap.old_status)) {
      if (!run.started) {
        t.fresh_credential = freshCredential();
        if (!t.fresh_credential) return Error{0, "Internal", "no random bytes for the run's gateway credential"};
      }
    } else if (!handedOff(snap.old_status) && !credentialLiveness(snap.agent_pod.get()).live) {
      // Only while the run waits for the gateway: one read, for the GatewayReady condition.
      auto d = client_.get(kube::resources::deployments, snap.ns, kGatewayName, cancel);
      if (d) t.gateway_deployment = std::make_shared<const json>(std::move(d.value()));
      if (d || d.error().code == 404) t.gateway_deployment_read = true;
      else log::warn("cannot read the gateway's Deployment", {{"key", snap.key}, {"error", d.error().describe()}});
    }
  }
  return t;
}

Status RunReconciler::gatherStagePods(const RunSnapshot& snap, TeamFacts& team, const CancelToken& cancel) {
  const AgentRun& run = *snap.run;
  for (const auto& e : snap.old_status.value("stages", json::array())) {
    std::string stage = e.value("name", "");
    if (stage == "agent" || e.value("phase", "") != "Running") continue;
    const std::string name = stagePodName(run, stage);
    auto stage_pod = pods_.get(run.ns + "/" + name);
    if (!stage_pod) {  // the cache can lag behind our own create
      auto fresh = client_.get(kube::resources::pods, run.ns, name, cancel);
      if (fresh) stage_pod = std::make_shared<const json>(std::move(fresh.value()));
      else if (fresh.error().code != 404) return fresh.error();
    }
    if (stage_pod) team.stage_pods[stage] = stage_pod;
  }
  return Ok{};
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
  return answer->value(json::json_pointer("/status/allowed"), false);
}

// ---------------------------------------------------------------------------------------------
// reconcile: gather, plan, execute

runtime::ReconcileResult RunReconciler::reconcile(const std::string& key, const CancelToken& cancel) {
  auto gathered = gather(key, cancel);
  if (auto* r = std::get_if<runtime::ReconcileResult>(&gathered)) {
    if (!runs_.get(key)) {  // deleted: its children go with it
      {
        std::lock_guard lock(unwritten_mu_);
        unwritten_.erase(key);
      }
      auto slash = key.find('/');
      // Its agent pod goes with it (the garbage collector): nothing is left to record it in.
      if (auto pod = pods_.get(key + "-agent"); slash != std::string::npos && pod) {
        if (auto release = releaseAgentPod(pod.get())) {
          auto patched = client_.mergePatch(kube::resources::pods, key.substr(0, slash), key.substr(slash + 1) + "-agent",
                                            *release, "", cancel);
          if (!patched && patched.error().code != 404) return runtime::reconcileErrorFrom(patched.error());
        }
      }
      if (slash != std::string::npos && events_) {
        std::set<std::string> recent;
        {
          std::lock_guard lock(facts_mu_);
          for (const auto& [uid, facts] : facts_) recent.insert(facts.begin(), facts.end());
        }
        RunSnapshot none;
        none.key = key;
        Execution ex{&none, nullptr, &cancel, std::nullopt, std::nullopt};
        return execute(planApprovalsOfMissingRun(key.substr(0, slash), key.substr(slash + 1), approvals_.list(), recent), ex);
      }
    }
    return *r;
  }
  const RunSnapshot& snap = std::get<RunSnapshot>(gathered);
  const PlanClock clock = clockNow();
  Execution ex{&snap, &clock, &cancel, std::nullopt, std::nullopt};
  RunDraft draft(snap, clock);
  auto admitted = planAdmission(snap, draft);
  if (!admitted) return execute(draft.take(), ex);
  auto team = gatherTeam(snap, *admitted, cancel);
  if (!team) {
    index_.release(snap.key, admitted->run.uid);
    return runtime::reconcileErrorFrom(team.error());
  }
  auto result = planAndExecute(snap, *admitted, *team, draft, ex, cancel);
  index_.release(snap.key, admitted->run.uid);  // a slot reserved but not taken by a pod (MarkStarted) goes back
  return result;
}

runtime::ReconcileResult RunReconciler::planAndExecute(const RunSnapshot& snap, const Admitted& admitted, TeamFacts& team,
                                                       const RunDraft& draft, Execution& ex, const CancelToken& cancel) {
  const PlanClock& clock = *ex.clock;
  const RunPlanSettings set = settings();
  RunPlan plan = planRun(snap, admitted, team, draft, set, clock);
  // planStages asks RBAC about approvals it has not seen yet, then again about those it counted
  // before once their stage would start: ask, and plan again (at most twice).
  for (int pass = 0; pass < 2 && (!plan.to_review.empty() || !plan.to_recheck.empty()); ++pass) {
    for (auto [asked, answers] : {std::pair{&plan.to_review, &team.rbac_allows}, std::pair{&plan.to_recheck, &team.rbac_rechecked}}) {
      for (const auto& a : *asked) {
        auto allowed = mayApprove(admitted.run, a, cancel);
        if (!allowed) return runtime::reconcileErrorFrom(allowed.error());
        (*answers)[a.name] = *allowed;
      }
    }
    plan = planRun(snap, admitted, team, draft, set, clock);
  }
  if (!plan.to_review.empty() || !plan.to_recheck.empty()) {
    return runtime::reconcileErrorFrom(Error{0, "Internal", "approvals left unreviewed after RBAC answered"});
  }
  return execute(std::move(plan), ex);
}

// ---------------------------------------------------------------------------------------------
// execute

runtime::ReconcileResult RunReconciler::execute(RunPlan plan, Execution& ex) {
  for (const auto& action : plan.actions) {
    if (const auto* create = std::get_if<CreateAgentPod>(&action)) {
      runtime::ReconcileResult result = plan.next;
      if (auto s = performAgentPod(*create, ex, result); !s) return runtime::reconcileErrorFrom(s.error());
      return result;  // the rest of the plan was made from the API server's answer
    }
    if (auto s = perform(action, ex); !s) return runtime::reconcileErrorFrom(s.error());
  }
  return plan.next;
}

Status RunReconciler::perform(const RunAction& action, Execution& ex) {
  const RunSnapshot& snap = *ex.snap;
  if (const auto* a = std::get_if<AppendAudit>(&action)) return appendAudit(*a, ex);
  if (const auto* w = std::get_if<ApplyNetworkPolicy>(&action)) return writeNetworkPolicy(*w, ex);
  if (const auto* w = std::get_if<WriteStatus>(&action)) return writeStatus(*w, ex);
  if (const auto* d = std::get_if<DeletePod>(&action)) return deletePod(*d, ex);
  if (const auto* c = std::get_if<ApplyClaim>(&action)) {
    if (ex.network_policy_error) return *ex.network_policy_error;
    auto r = client_.apply(kube::resources::persistentvolumeclaims, snap.ns, c->name, c->claim, options_.field_manager,
                           true, "", *ex.cancel);
    if (!r) return r.error();
  } else if (const auto* c = std::get_if<CreateSecret>(&action)) {
    // Created, never read back: the answer (which echoes the value) is dropped at once.
    auto r = client_.create(kube::resources::secrets, snap.ns, c->secret, *ex.cancel);
    if (!r && r.error().reason != "AlreadyExists") return r.error();
  } else if (const auto* c = std::get_if<CreateStagePod>(&action)) {
    if (ex.network_policy_error) return *ex.network_policy_error;
    auto created = client_.create(kube::resources::pods, snap.ns, c->pod, *ex.cancel);
    if (!created && created.error().reason != "AlreadyExists") return created.error();
  } else if (const auto* p = std::get_if<PatchPod>(&action)) {
    auto patched = client_.mergePatch(kube::resources::pods, snap.ns, p->name, p->patch, "", *ex.cancel);
    if (!patched && patched.error().code != 404) return patched.error();
  } else if (const auto* d = std::get_if<DeferStatus>(&action)) {
    json status = d->status;
    if (ex.audit_position) status["audit"] = *ex.audit_position;
    std::lock_guard lock(unwritten_mu_);
    unwritten_[snap.key] = {snap.run ? snap.run->uid : "", std::move(status), d->since};
  } else if (const auto* e = std::get_if<EmitEvent>(&action)) {
    if (events_) events_->record(e->regarding, e->type, e->reason, e->action, e->message);
  } else if (const auto* r = std::get_if<RememberSpend>(&action)) {
    std::lock_guard lock(spend_mu_);
    spend_[snap.key] = r->spend;
  } else if (std::holds_alternative<ForgetSpend>(action)) {
    size_t erased = 0;
    {
      std::lock_guard lock(spend_mu_);
      erased = spend_.erase(snap.key);
    }
    if (erased && options_.budget_observer.forget) options_.budget_observer.forget(snap.ns, snap.name);
  } else if (const auto* f = std::get_if<RememberFact>(&action)) {
    std::lock_guard lock(facts_mu_);
    facts_[snap.run ? snap.run->uid : ""].insert(f->fact);
  } else if (std::holds_alternative<MarkStarted>(action)) {
    if (snap.run) index_.markStarted(snap.key, snap.run->uid);
  } else if (const auto* r = std::get_if<ReportBudget>(&action)) {
    reportBudget(*r, ex);
  } else if (const auto* l = std::get_if<LogLine>(&action)) {
    if (l->warning) log::warn(l->message, l->fields);
    else log::info(l->message, l->fields);
  }
  return Ok{};
}

Status RunReconciler::performAgentPod(const CreateAgentPod& create, Execution& ex, runtime::ReconcileResult& result) {
  if (ex.network_policy_error) return *ex.network_policy_error;
  const RunSnapshot& snap = *ex.snap;
  const std::string name = create.then->pod_name;
  AgentCreated outcome;
  auto created = client_.create(kube::resources::pods, snap.ns, create.pod, *ex.cancel);
  if (created) {
    outcome.pod = std::make_shared<const json>(std::move(created.value()));
  } else if (created.error().reason == "AlreadyExists") {
    auto existing = client_.get(kube::resources::pods, snap.ns, name, *ex.cancel);
    if (!existing) return existing.error();  // gone meanwhile: look again
    outcome.kind = AgentCreated::Kind::NameTaken;
    outcome.pod = std::make_shared<const json>(std::move(existing.value()));
  } else if (runtime::reconcileErrorFrom(created.error()).kind == ReconcileError::Kind::Terminal) {
    outcome.kind = AgentCreated::Kind::Rejected;
    outcome.message = created.error().message;
  } else {
    return created.error();
  }
  result = execute(planAgentStatus(*create.then, &outcome, settings(), *ex.clock), ex);
  return Ok{};
}

Status RunReconciler::appendAudit(const AppendAudit& a, Execution& ex) {
  if (a.before_pod && ex.network_policy_error) return *ex.network_policy_error;
  auto* log = audit_.load();
  const RunSnapshot& snap = *ex.snap;
  if (!log || a.records.empty() || !snap.run) return Ok{};
  std::vector<audit::Entry> entries;
  for (const auto& [action, details] : a.records) {
    entries.push_back({a.actor.empty() ? options_.actor : a.actor, {snap.ns, snap.name, snap.run->uid}, action, details});
  }
  auto appended = log->append(std::move(entries), *ex.cancel);
  if (!appended) return appended.error();
  if (appended->last_seq == 0) return Ok{};  // every record was in the chain already (audit::onceKey)
  ex.audit_position = json{{"sequence", appended->last_seq}, {"head", appended->last_hash}};
  return Ok{};
}

Status RunReconciler::writeStatus(const WriteStatus& w, Execution& ex) {
  const RunSnapshot& snap = *ex.snap;
  json status = w.status;
  if (ex.audit_position) status["audit"] = *ex.audit_position;
  if (status == snap.cached_status) return Ok{};
  json updated = *snap.object;
  updated["status"] = std::move(status);
  auto written = client_.replace(kube::resources::agentruns, snap.ns, snap.name, updated, "status", *ex.cancel);
  if (!written) return written.error();
  {
    std::lock_guard lock(written_mu_);
    written_[snap.key] = {stringAt(*written, "/metadata/resourceVersion"), std::chrono::steady_clock::now()};
  }
  {
    std::lock_guard lock(unwritten_mu_);
    unwritten_.erase(snap.key);
  }
  if (w.event && events_) events_->record(w.event->regarding, w.event->type, w.event->reason, w.event->action, w.event->message);
  log::info("run status", {{"key", snap.key}, {"phase", w.status.value("phase", "")}, {"reason", w.reason}, {"message", w.message}});
  return Ok{};
}

Status RunReconciler::writeNetworkPolicy(const ApplyNetworkPolicy& a, Execution& ex) {
  const RunSnapshot& snap = *ex.snap;
  const NetworkPolicyWrite& w = a.write;
  const std::string name = stringAt(w.planned, "/metadata/name");
  // A JSON patch that puts back the spec, labels and annotations whole, only if nobody wrote in
  // between (the `test`): the operator's RBAC has patch, not update. A server-side apply would
  // leave fields someone else added, such as an extra podSelector label that selects nothing.
  json ops = json::array();
  if (w.live) {
    ops = json::array({{{"op", "test"}, {"path", "/metadata/resourceVersion"}, {"value", stringAt(*w.live, "/metadata/resourceVersion")}},
                       {{"op", "add"}, {"path", "/spec"}, {"value", w.planned["spec"]}},
                       {{"op", "add"}, {"path", "/metadata/labels"}, {"value", w.planned["metadata"]["labels"]}},
                       {{"op", "add"}, {"path", "/metadata/annotations"}, {"value", w.planned["metadata"]["annotations"]}}});
  }
  auto written = w.live ? client_.jsonPatch(kube::resources::networkpolicies, snap.ns, name, ops, "", *ex.cancel)
                        : client_.apply(kube::resources::networkpolicies, snap.ns, name, w.planned, options_.field_manager,
                                        true, "", *ex.cancel);
  if (!written) {
    // Holds back only the creation of pods: a live run is still looked after.
    ex.network_policy_error = written.error();
    log::warn("cannot apply the team's NetworkPolicy; no pod of the team's runs starts here until it is",
              {{"key", snap.key}, {"networkPolicy", name}, {"error", written.error().describe()}});
    return Ok{};
  }
  {
    std::lock_guard lock(applied_mu_);
    applied_[snap.ns + "/" + name] = {specHashOf(w.planned), std::chrono::steady_clock::now(),
                                      intAt(*written, "/metadata/generation")};
  }
  if (a.restored_event) {
    if (events_) events_->record(a.restored_event->regarding, a.restored_event->type, a.restored_event->reason,
                                 a.restored_event->action, a.restored_event->message);
    log::warn("restored an edited NetworkPolicy", {{"key", snap.key}, {"networkPolicy", name}, {"fields", joinFields(w.drift)}});
  }
  return Ok{};
}

Status RunReconciler::deletePod(const DeletePod& d, Execution& ex) {
  kube::DeleteOptions del;
  if (d.graceful) del.grace_period_seconds = static_cast<int>(options_.plan.termination_grace.count());
  if (!d.precondition_uid.empty()) del.precondition_uid = d.precondition_uid;
  auto r = client_.remove(kube::resources::pods, ex.snap->ns, d.name, del, *ex.cancel);
  if (!r && r.error().code != 404) return r.error();
  return Ok{};
}

void RunReconciler::reportBudget(const ReportBudget& r, const Execution& ex) {
  const auto& o = options_.budget_observer;
  if (r.ratios && o.ratio) {
    o.ratio(ex.snap->ns, ex.snap->name, "tokens", r.tokens);
    o.ratio(ex.snap->ns, ex.snap->name, "costUSD", r.cost);
    o.ratio(ex.snap->ns, ex.snap->name, "wallClock", r.wall_clock);
  }
  if (!r.termination.empty() && o.termination) o.termination(r.termination);
  if (!r.checkpoint.empty() && o.checkpoint) o.checkpoint(r.checkpoint);
}

}  // namespace paddock::controllers
