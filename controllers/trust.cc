#include "controllers/trust.h"

#include <algorithm>
#include <set>
#include <tuple>

#include "controllers/plan.h"
#include "operator/audit/record.h"

namespace paddock::controllers {
namespace {

// A SHA-256 digest of a JSON value's canonical form, cut to 96 bits: finding another value with the
// same digest takes 2^96 tries, and a few dozen of them fit in a run's status.
std::string digest(const json& value) { return audit::chainHash("", audit::canonical(value)).substr(0, 7 + 24); }

std::string text(const json& value) { return value.is_string() ? value.get<std::string>() : value.dump(); }

// Only what is set, with the API server's defaults filled in, so a planned volume and the same
// volume read back compare equal.
json normalVolume(const json& v) {
  json out = {{"name", v.value("name", "")}};
  if (v.contains("secret")) {
    const json& s = v["secret"];
    out["secret"] = {{"secretName", s.value("secretName", "")}, {"items", s.value("items", json::array())},
                     {"defaultMode", s.value("defaultMode", 0644)}, {"optional", s.value("optional", false)}};
  } else if (v.contains("downwardAPI")) {
    json items = json::array();
    for (const auto& i : v["downwardAPI"].value("items", json::array())) {
      items.push_back({{"path", i.value("path", "")},
                       {"fieldPath", i.value(json::json_pointer("/fieldRef/fieldPath"), std::string())},
                       {"resourceFieldRef", i.value("resourceFieldRef", json())}});
    }
    out["downwardAPI"] = {{"items", items}, {"defaultMode", v["downwardAPI"].value("defaultMode", 0644)}};
  } else if (v.contains("emptyDir")) {
    out["emptyDir"] = {{"medium", v["emptyDir"].value("medium", "")}, {"sizeLimit", v["emptyDir"].value("sizeLimit", "")}};
  } else if (v.contains("persistentVolumeClaim")) {
    const json& c = v["persistentVolumeClaim"];
    out["persistentVolumeClaim"] = {{"claimName", c.value("claimName", "")}, {"readOnly", c.value("readOnly", false)}};
  } else {
    out["other"] = v;  // nothing Paddock plans: any such volume differs from the plan
  }
  return out;
}

void containers(const json& spec, const std::string& list, json& f) {
  const json cs = spec.value(list, json::array());
  std::string names;
  for (const auto& c : cs) names += (names.empty() ? "" : ",") + c.value("name", "");
  f["spec." + list] = names.empty() ? "none" : names;
  for (size_t i = 0; i < cs.size(); ++i) {
    const std::string at = "spec." + list + "[" + std::to_string(i) + "]";
    json rest = json::object();
    for (const char* key : {"command", "args", "env", "envFrom", "volumeMounts", "volumeDevices", "securityContext",
                            "workingDir", "stdin", "tty"}) {
      if (cs[i].contains(key)) rest[key] = cs[i][key];
    }
    f[at + ".image"] = cs[i].value("image", "");
    f[at] = digest(rest);
  }
}

std::string flag(const json& spec, const char* key, bool server_default) {
  return spec.value(key, server_default) ? "true" : "false";
}

}  // namespace

bool ownedBy(const json& child, const std::string& run_uid) {
  if (run_uid.empty()) return false;
  for (const auto& ref : child.value(json::json_pointer("/metadata/ownerReferences"), json::array())) {
    if (ref.value("controller", false) && ref.value("kind", "") == "AgentRun" && ref.value("uid", "") == run_uid) {
      return true;
    }
  }
  return false;
}

json podFingerprint(const json& pod) {
  json f = json::object();
  const json meta = pod.value("metadata", json::object());
  const json labels = meta.value("labels", json::object());
  for (const auto& [k, v] : labels.items()) f["metadata.labels[\"" + k + "\"]"] = text(v);
  const json annotations = meta.value("annotations", json::object());
  for (const char* k : {kAnnotationTask, kAnnotationRepository, kAnnotationProtectedPaths, kAnnotationManagedSettings,
                        kAnnotationManagedMcp}) {
    if (annotations.contains(k)) f[std::string("metadata.annotations[\"") + k + "\"]"] = digest(annotations[k]);
  }
  std::string owner = "none";
  for (const auto& ref : meta.value("ownerReferences", json::array())) {
    if (ref.value("controller", false)) owner = ref.value("kind", "") + "/" + ref.value("name", "") + "/" + ref.value("uid", "");
  }
  f["metadata.ownerReferences"] = owner;
  const json spec = pod.value("spec", json::object());
  containers(spec, "initContainers", f);
  containers(spec, "containers", f);
  containers(spec, "ephemeralContainers", f);
  json volumes = json::array();
  for (const auto& v : spec.value("volumes", json::array())) volumes.push_back(normalVolume(v));
  f["spec.volumes"] = digest(volumes);
  f["spec.securityContext"] = digest(spec.value("securityContext", json::object()));
  f["spec.hostNetwork"] = flag(spec, "hostNetwork", false);
  f["spec.hostPID"] = flag(spec, "hostPID", false);
  f["spec.hostIPC"] = flag(spec, "hostIPC", false);
  f["spec.hostUsers"] = flag(spec, "hostUsers", true);
  f["spec.shareProcessNamespace"] = flag(spec, "shareProcessNamespace", false);
  f["spec.automountServiceAccountToken"] = flag(spec, "automountServiceAccountToken", true);
  f["spec.enableServiceLinks"] = flag(spec, "enableServiceLinks", true);
  f["spec.serviceAccountName"] = spec.value("serviceAccountName", "default");
  f["spec.runtimeClassName"] = spec.value("runtimeClassName", "");
  f["spec.restartPolicy"] = spec.value("restartPolicy", "Always");
  return f;
}

std::vector<std::string> fingerprintDrift(const json& planned, const json& live) {
  std::set<std::string> keys;
  for (const auto* side : {&planned, &live}) {
    if (!side->is_object()) continue;
    for (const auto& [k, v] : side->items()) keys.insert(k);
  }
  std::vector<std::string> out;
  for (const auto& k : keys) {
    if (!planned.is_object() || !live.is_object() || !planned.contains(k) || !live.contains(k) || planned[k] != live[k]) {
      out.push_back(k);
    }
  }
  return out;
}

PodJudgement judgePod(const json* live, const std::string& run_uid, const std::string& recorded_uid,
                      const json& planned) {
  PodJudgement j;
  if (!live || !live->is_object()) return j;
  const std::string uid = live->value(json::json_pointer("/metadata/uid"), std::string());
  bool ours = recorded_uid.empty() ? ownedBy(*live, run_uid) : uid == recorded_uid;
  if (!ours) {
    j.verdict = PodJudgement::Verdict::NotOurs;
    return j;
  }
  if (planned.is_object() && !planned.empty()) j.fields = fingerprintDrift(planned, podFingerprint(*live));
  j.verdict = j.fields.empty() ? PodJudgement::Verdict::Ours : PodJudgement::Verdict::Tampered;
  return j;
}

std::string joinFields(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out += i + 1 == fields.size() ? " and " : ", ";
    out += fields[i];
  }
  return out;
}

namespace {

// Members that are null, empty lists or empty objects mean the same as missing ones; list
// elements are kept as they are ([{}] allows everything, [] nothing).
json pruned(const json& v) {
  if (v.is_array()) {
    json out = json::array();
    for (const auto& e : v) out.push_back(pruned(e));
    return out;
  }
  if (!v.is_object()) return v;
  json out = json::object();
  for (const auto& [k, e] : v.items()) {
    json p = pruned(e);
    if (p.is_null() || ((p.is_array() || p.is_object()) && p.empty())) continue;
    out[k] = std::move(p);
  }
  return out;
}

}  // namespace

std::vector<std::string> networkPolicyDrift(const json& planned, const json& live) {
  std::vector<std::string> out;
  const json want = pruned(planned.value("spec", json::object()));
  const json have = pruned(live.value("spec", json::object()));
  std::set<std::string> keys;
  for (const auto* side : {&want, &have}) {
    for (const auto& [k, v] : side->items()) keys.insert(k);
  }
  for (const auto& k : keys) {
    if (want.value(k, json()) != have.value(k, json())) out.push_back("spec." + k);
  }
  const json live_labels = live.value(json::json_pointer("/metadata/labels"), json::object());
  const json planned_labels = planned.value(json::json_pointer("/metadata/labels"), json::object());
  for (const auto& [k, v] : planned_labels.items()) {
    if (live_labels.value(k, json()) != v) out.push_back("metadata.labels[\"" + k + "\"]");
  }
  return out;
}

std::vector<UnmatchedApproval> unmatchedApprovals(const AgentRun& run, const std::vector<std::string>& stages,
                                                  const std::vector<AgentApproval>& approvals) {
  std::vector<const AgentApproval*> mine;
  for (const auto& a : approvals) {
    if (a.ns == run.ns && a.run == run.name) mine.push_back(&a);
  }
  std::sort(mine.begin(), mine.end(), [](auto* x, auto* y) {
    return std::tie(x->creation_timestamp, x->name) < std::tie(y->creation_timestamp, y->name);
  });
  std::string asked;
  for (const auto& s : stages) asked += (asked.empty() ? "" : ", ") + s;
  std::vector<UnmatchedApproval> out;
  for (const auto* a : mine) {
    if (std::find(stages.begin(), stages.end(), a->stage) != stages.end()) continue;
    out.push_back({a->name, a->stage,
                   "AgentApproval " + a->name + " is for stage " + a->stage + ", which AgentRun " + run.name +
                       " did not ask for (its stages: " + (asked.empty() ? "none" : asked) +
                       "); it counts for nothing: delete it, and approve one of the run's own stages instead"});
  }
  return out;
}

}  // namespace paddock::controllers
