#include "gateway/transcript.h"

#include <algorithm>
#include <cctype>

#include "operator/audit/blob.h"

namespace paddock::gateway {
namespace {

using nlohmann::json;

bool tokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
}

// The kind of credential `tok` is, or "" when it does not look like one.
std::string credentialKind(std::string_view tok) {
  struct Prefix {
    const char* prefix;
    size_t min_len;
    const char* kind;
  };
  static const Prefix prefixes[] = {
      {"sk-ant-", 27, "anthropic-api-key"}, {"ghp_", 40, "github-token"},   {"gho_", 40, "github-token"},
      {"ghu_", 40, "github-token"},         {"ghs_", 40, "github-token"},   {"ghr_", 40, "github-token"},
      {"github_pat_", 60, "github-token"},  {"glpat-", 26, "gitlab-token"}, {"AKIA", 20, "aws-access-key-id"},
      {"ASIA", 20, "aws-access-key-id"},    {"xoxb-", 15, "slack-token"},   {"xoxp-", 15, "slack-token"},
      {"xoxa-", 15, "slack-token"},         {"AIza", 39, "google-api-key"}, {"sk-proj-", 48, "openai-api-key"},
      {"eyJ", 40, "jwt"},
  };
  for (const auto& p : prefixes) {
    if (tok.starts_with(p.prefix) && tok.size() >= p.min_len) {
      if (std::string_view(p.kind) == "jwt" && std::count(tok.begin(), tok.end(), '.') != 2) continue;
      if (std::string_view(p.kind) == "aws-access-key-id" && tok.ends_with("EXAMPLE")) continue;
      return p.kind;
    }
  }
  return "";
}

void replaceAll(std::string& s, std::string_view what, std::string_view with) {
  if (what.empty()) return;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + with.size())) {
    s.replace(at, what.size(), with);
  }
}

// Masks the body of PEM private keys.
void maskPem(std::string& s) {
  for (size_t at = s.find("-----BEGIN "); at != std::string::npos; at = s.find("-----BEGIN ", at + 1)) {
    size_t line_end = s.find("-----", at + 11);
    if (line_end == std::string::npos) return;
    std::string_view header(s.data() + at, line_end + 5 - at);
    if (header.find("PRIVATE KEY") == std::string_view::npos) continue;
    size_t end = s.find("-----END ", line_end + 5);
    size_t stop = end == std::string::npos ? s.size() : end;
    s.replace(line_end + 5, stop - (line_end + 5), "[masked:private-key]");
  }
}

// Each string in `v`: masked, and moved to a blob when long.
void scrub(json& v, const std::vector<std::string>& known, int64_t threshold, std::vector<std::string>& blobs) {
  if (v.is_string()) {
    std::string s = maskCredentials(v.get<std::string>(), known);
    if (static_cast<int64_t>(s.size()) > threshold) {
      v = audit::blobRef(s);
      blobs.push_back(std::move(s));
    } else {
      v = std::move(s);
    }
  } else if (v.is_object() || v.is_array()) {
    for (auto& child : v) scrub(child, known, threshold, blobs);
  }
}

}  // namespace

namespace {

// The password of each URL's userinfo (scheme://user:PASSWORD@host): a proxy URL carrying a run's
// credential, a remote with a token in it.
void maskUrlPasswords(std::string& s) {
  if (s.find("://") == std::string::npos) return;
  std::string out;
  out.reserve(s.size());
  size_t copied = 0;
  for (size_t at = s.find("://"); at != std::string::npos; at = s.find("://", at + 3)) {
    size_t start = at + 3, end = start, colon = std::string::npos;
    while (end < s.size() && end - start < 4096 && s[end] != '@' && s[end] != '/' &&
           !std::isspace(static_cast<unsigned char>(s[end])) && s[end] != '"' && s[end] != '\'') {
      if (s[end] == ':' && colon == std::string::npos) colon = end;
      ++end;
    }
    if (end >= s.size() || s[end] != '@' || colon == std::string::npos || colon + 1 == end) continue;
    out.append(s, copied, colon + 1 - copied);
    out += "[masked:url-password]";
    copied = end;
  }
  out.append(s, copied, std::string::npos);
  s = std::move(out);
}

// The user:password of each HTTP Basic credential ("Basic " and 16 or more base64 characters), as
// `curl -v` prints a proxy's Proxy-Authorization.
void maskBasicCredentials(std::string& s) {
  static const std::string_view kBasic = "Basic ";
  auto base64 = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '='; };
  std::string out;
  size_t copied = 0;
  for (size_t at = s.find(kBasic); at != std::string::npos; at = s.find(kBasic, at + 1)) {
    size_t start = at + kBasic.size(), end = start;
    while (end < s.size() && base64(s[end])) ++end;
    if (end - start < 16) continue;
    out.append(s, copied, start - copied);
    out += "[masked:basic-credentials]";
    copied = end;
  }
  if (copied == 0) return;
  out.append(s, copied, std::string::npos);
  s = std::move(out);
}

}  // namespace

std::string maskCredentials(std::string_view text, const std::vector<std::string>& known) {
  std::string s(text);
  for (const auto& k : known) replaceAll(s, k, "[masked:known-secret]");
  maskPem(s);
  maskUrlPasswords(s);
  maskBasicCredentials(s);
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (!tokenChar(s[i])) {
      out.push_back(s[i++]);
      continue;
    }
    size_t j = i;
    while (j < s.size() && tokenChar(s[j])) ++j;
    std::string_view tok(s.data() + i, j - i);
    std::string kind = credentialKind(tok);
    bool bearer = out.size() >= 7 && std::string_view(out).substr(out.size() - 7) == "Bearer " && tok.size() >= 16;
    if (!kind.empty() || bearer) {
      out += "[masked:" + (kind.empty() ? std::string("bearer-token") : kind) + "]";
    } else {
      out.append(tok);
    }
    i = j;
  }
  return out;
}

size_t ConversationIndex::advance(const std::string& run, const json& messages) {
  if (!messages.is_array() || messages.empty()) return 0;
  std::string key = run + "|" + audit::blobHash(messages[0].dump(-1, ' ', false, json::error_handler_t::replace));
  std::lock_guard l(mu_);
  size_t& seen = seen_[key];
  size_t first = seen <= messages.size() ? seen : 0;
  // The response of the previous call comes back as the next assistant turn: it is recorded
  // already, as that call's response.
  if (first > 0 && first < messages.size() && messages[first].value("role", "") == "assistant") ++first;
  seen = messages.size() + 1;
  return std::min(first, messages.size());
}

TranscriptRecord buildTranscript(const CallFacts& f, const std::vector<std::string>& known, int64_t threshold) {
  TranscriptRecord out;
  json details = {
      {"model", f.model},
      {"stream", f.stream},
      {"status", f.status},
      {"messages", f.new_messages},
      {"response", {{"content", f.response_content}, {"stopReason", f.stop_reason}}},
      {"usage",
       {{"input", f.usage.input}, {"output", f.usage.output}, {"cacheRead", f.usage.cache_read},
        {"cacheWrite", f.usage.cache_write}}},
      {"maxTokens", {{"requested", f.requested_max_tokens}, {"granted", f.granted_max_tokens}}},
      {"costUSD", formatUsd(f.charged_nano)},
      {"spent", {{"tokens", f.spent_tokens}, {"costUSD", formatUsd(f.spent_nano)}}},
  };
  if (f.checkpoint_sent) details["checkpointSent"] = true;
  if (!f.error.empty()) details["error"] = f.error;
  scrub(details["messages"], known, threshold, out.blobs);
  scrub(details["response"], known, threshold, out.blobs);
  if (details.contains("error")) scrub(details["error"], known, threshold, out.blobs);
  out.entry = audit::Entry{"paddock-gateway", audit::RunRef{f.ns, f.name, ""}, audit::Action::ModelCall, details};
  return out;
}

}  // namespace paddock::gateway
