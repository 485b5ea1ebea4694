#include "controllers/stage_report.h"

#include <algorithm>
#include <cctype>

#include "operator/runtime/events.h"

namespace paddock::controllers {
namespace {

using nlohmann::json;

bool printableAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

bool noControl(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) { return (c >= 0 && c < 0x20) || c == 0x7f; });
}

bool camelCase(std::string_view s) {
  return !s.empty() && s.size() <= 64 && s.front() >= 'A' && s.front() <= 'Z' &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); });
}

bool branchName(std::string_view s) {
  return !s.empty() && s.size() <= 255 && s.front() != '-' && s.find("..") == std::string_view::npos &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '/' || c == '-';
         });
}

bool webUrl(std::string_view s) {
  if (s.size() > 512 || !printableAscii(s)) return false;
  if (!s.starts_with("https://") && !s.starts_with("http://")) return false;
  return s.find_first_of("\"'<>\\^`{|}") == std::string_view::npos;
}

bool patternName(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

bool pathName(std::string_view s) { return !s.empty() && s.size() <= 512 && noControl(s); }

// Reads the report's fields one by one, leaving out (and naming) those that fail their check.
class FieldReader {
 public:
  FieldReader(const json& object, StageReport& report) : object_(object), report_(report) {}

  // A string field that must pass `ok`; "" when absent or failing.
  std::string str(const char* key, bool (*ok)(std::string_view)) {
    auto it = object_.find(key);
    if (it == object_.end()) return "";
    if (it->is_string() && ok(it->get_ref<const std::string&>())) return it->get<std::string>();
    report_.dropped.push_back(key);
    return "";
  }
  // A list of strings, each passing `ok`, at most kReportListLimit kept.
  std::vector<std::string> strings(const char* key, bool (*ok)(std::string_view)) {
    std::vector<std::string> out;
    auto it = object_.find(key);
    if (it == object_.end()) return out;
    if (!it->is_array()) return drop(key), out;
    for (const auto& v : *it) {
      if (!v.is_string() || !ok(v.get_ref<const std::string&>())) return drop(key), std::vector<std::string>{};
      if (out.size() < kReportListLimit) out.push_back(v.get<std::string>());
    }
    return out;
  }
  const json* object(const char* key) {
    auto it = object_.find(key);
    if (it == object_.end()) return nullptr;
    if (!it->is_object()) return drop(key), nullptr;
    return &*it;
  }
  void drop(const char* key) { report_.dropped.push_back(key); }

 private:
  const json& object_;
  StageReport& report_;
};

std::string cleanMessage(const std::string& text) {
  std::string out = runtime::truncateUtf8(text, 1024);
  for (char& c : out) {
    if ((c >= 0 && c < 0x20) || c == 0x7f) c = ' ';
  }
  return out;
}

void readFindings(const json& object, StageReport& r, FieldReader& fields) {
  auto it = object.find("findings");
  if (it == object.end()) return;
  if (!it->is_array()) return fields.drop("findings");
  for (const auto& f : *it) {
    if (!f.is_object() || !f.contains("file") || !f["file"].is_string() || !f.contains("line") ||
        !f["line"].is_number_unsigned() || !f.contains("pattern") || !f["pattern"].is_string() ||
        !pathName(f["file"].get_ref<const std::string&>()) || !patternName(f["pattern"].get_ref<const std::string&>()) ||
        f["line"].get<uint64_t>() > 100'000'000) {
      r.findings.clear();
      return fields.drop("findings");
    }
    if (r.findings.size() < kReportListLimit) {
      r.findings.push_back(f["file"].get<std::string>() + ":" + std::to_string(f["line"].get<uint64_t>()) + ":" +
                           f["pattern"].get<std::string>());
    }
  }
}

}  // namespace

bool isCommitId(std::string_view s) {
  return (s.size() == 40 || s.size() == 64) &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool isReleaseId(std::string_view s) {
  return !s.empty() && s.size() <= 128 && std::isalnum(static_cast<unsigned char>(s.front())) &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
         });
}

Result<StageReport> parseStageReport(std::string_view message, const std::string& stage) {
  auto invalid = [&](const std::string& why) {
    return Error::local("InvalidResult", "the termination message of stage " + stage + " " + why);
  };
  if (message.empty()) return invalid("is empty: the stage wrote no result");
  if (message.size() > kTerminationMessageLimit) return invalid("is larger than 4096 bytes");
  json j = json::parse(message, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid("is not a JSON object");
  if (!j.contains("stage") || !j["stage"].is_string() || j["stage"].get<std::string>() != stage) {
    return invalid("is not a result of stage " + stage);
  }
  StageReport r;
  r.stage = stage;
  FieldReader fields(j, r);
  r.outcome = fields.str("outcome", camelCase);
  if (r.outcome.empty()) return invalid("has no valid outcome");
  r.reason = fields.str("reason", camelCase);
  r.message = cleanMessage(fields.str("message", [](std::string_view) { return true; }));
  r.branch = fields.str("branch", branchName);
  r.commit = fields.str("commit", isCommitId);
  r.base_commit = fields.str("baseCommit", isCommitId);
  r.start_commit = fields.str("startCommit", isCommitId);
  if (const json* pr = fields.object("pullRequest")) {
    bool url_ok = pr->contains("url") && (*pr)["url"].is_string() && webUrl((*pr)["url"].get_ref<const std::string&>());
    bool number_ok = pr->contains("number") && (*pr)["number"].is_number_unsigned() &&
                     (*pr)["number"].get<uint64_t>() <= 2'147'483'647;
    if (url_ok && number_ok) {
      r.pull_request_url = (*pr)["url"].get<std::string>();
      r.pull_request_number = (*pr)["number"].get<int64_t>();
    } else {
      fields.drop("pullRequest");
    }
  }
  if (const json* release = fields.object("release")) {
    auto id = release->find("id");
    if (id != release->end() && id->is_string() && isReleaseId(id->get_ref<const std::string&>())) {
      r.release_id = id->get<std::string>();
    } else {
      fields.drop("release");
    }
  }
  r.refused_paths = fields.strings("refusedPaths", pathName);
  r.conflicts = fields.strings("conflicts", pathName);
  readFindings(j, r, fields);
  return r;
}

json reportStatus(const StageReport& r) {
  json j = json::object();
  auto put = [&](const char* key, const std::string& v) {
    if (!v.empty()) j[key] = v;
  };
  put("outcome", r.outcome);
  put("reason", r.reason);
  put("branch", r.branch);
  put("commit", r.commit);
  put("baseCommit", r.base_commit);
  put("startCommit", r.start_commit);
  if (!r.pull_request_url.empty()) j["pullRequest"] = {{"url", r.pull_request_url}, {"number", r.pull_request_number}};
  if (!r.release_id.empty()) j["release"] = {{"id", r.release_id}};
  if (!r.refused_paths.empty()) j["refusedPaths"] = r.refused_paths;
  if (!r.conflicts.empty()) j["conflicts"] = r.conflicts;
  if (!r.findings.empty()) j["findings"] = r.findings;
  return j;
}

}  // namespace paddock::controllers
