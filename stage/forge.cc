#include "stage/forge.h"

#include <nlohmann/json.hpp>

#include "operator/common/json.h"

namespace paddock::stage {

using nlohmann::json;

namespace {

std::string stripGit(std::string s) {
  while (s.ends_with("/")) s.pop_back();
  if (s.ends_with(".git")) s.resize(s.size() - 4);
  return s;
}

// host and "owner/name" of https://, ssh:// and scp-like (git@host:owner/name) URLs.
bool hostAndPath(const std::string& url, std::string& host, std::string& path) {
  size_t scheme = url.find("://");
  std::string rest;
  if (scheme != std::string::npos) {
    rest = url.substr(scheme + 3);
    size_t slash = rest.find('/');
    if (slash == std::string::npos) return false;
    host = rest.substr(0, slash);
    path = rest.substr(slash + 1);
  } else {
    size_t colon = url.find(':');
    if (colon == std::string::npos || url.find('/') < colon) return false;
    host = url.substr(0, colon);
    path = url.substr(colon + 1);
  }
  if (size_t at = host.rfind('@'); at != std::string::npos) host = host.substr(at + 1);
  path = stripGit(path);
  return !host.empty() && !path.empty();
}

bool splitRepository(const std::string& path, std::string& owner, std::string& repo) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == path.size()) return false;
  owner = path.substr(0, slash);
  repo = path.substr(slash + 1);
  return true;
}

}  // namespace

Result<UrlParts> splitUrl(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos || (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)) {
    return Error::local("InvalidConfig", "URL \"" + url + "\" must start with https:// or http://");
  }
  size_t slash = url.find('/', scheme + 3);
  if (url.find('@', scheme + 3) < slash) {
    return Error::local("InvalidConfig", "URL must not carry credentials; the token comes from its secret file");
  }
  UrlParts out;
  out.origin = url.substr(0, slash);
  out.target = slash == std::string::npos ? "/" : url.substr(slash);
  if (out.origin.size() <= scheme + 3) return Error::local("InvalidConfig", "URL \"" + url + "\" has no host");
  return out;
}

Result<Forge> forgeFor(const std::string& repository_url, const std::string& kind, const std::string& api_url,
                       const std::string& repository) {
  Forge f;
  if (kind == "gitea") {
    f.kind = ForgeKind::Gitea;
  } else if (kind != "github" && !kind.empty()) {
    return Error::local("InvalidConfig", "--forge must be github or gitea, not \"" + kind + "\"");
  }
  std::string host, path;
  bool parsed = hostAndPath(repository_url, host, path);
  if (!repository.empty()) {
    path = stripGit(repository);
  } else if (!parsed) {
    return Error::local("InvalidConfig", "cannot tell the forge's owner/name from the repository URL \"" +
                                             repository_url + "\"; pass --forge-repository OWNER/NAME");
  }
  if (!splitRepository(path, f.owner, f.repo)) {
    return Error::local("InvalidConfig", "the repository \"" + path + "\" is not OWNER/NAME");
  }
  if (!api_url.empty()) {
    f.api_url = api_url;
  } else if (!parsed || repository_url.rfind("file://", 0) == 0 || repository_url.front() == '/') {
    return Error::local("InvalidConfig", "cannot tell the forge's API from the repository URL \"" + repository_url +
                                             "\"; pass --forge-api-url");
  } else if (f.kind == ForgeKind::GitHub) {
    f.api_url = host == "github.com" ? "https://api.github.com" : "https://" + host + "/api/v3";
  } else {
    f.api_url = "https://" + host + "/api/v1";
  }
  while (f.api_url.ends_with("/")) f.api_url.pop_back();
  return f;
}

http::Request pullRequestRequest(const Forge& forge, const std::string& target_prefix, const std::string& token,
                                 const PullRequestSpec& spec) {
  http::Request req;
  req.method = http::Method::Post;
  req.target = target_prefix + "/repos/" + forge.owner + "/" + forge.repo + "/pulls";
  json body = {{"title", spec.title}, {"head", spec.head}, {"base", spec.base}, {"body", spec.body}};
  if (forge.kind == ForgeKind::GitHub) {
    body["draft"] = spec.draft;
    body["maintainer_can_modify"] = false;
    req.headers = {{"Authorization", "Bearer " + token},
                   {"Accept", "application/vnd.github+json"},
                   {"X-GitHub-Api-Version", "2022-11-28"}};
  } else {
    if (spec.draft) body["title"] = "WIP: " + spec.title;
    req.headers = {{"Authorization", "token " + token}, {"Accept", "application/json"}};
  }
  req.headers.push_back({"Content-Type", "application/json"});
  req.headers.push_back({"User-Agent", "paddock-stage"});
  req.body = body.dump();
  return req;
}

Result<PullRequest> readPullRequestResponse(const http::Response& response) {
  json j = json::parse(response.body, nullptr, false);
  if (response.status != 201) {
    std::string message = j.is_discarded() ? response.body.substr(0, 300) : stringAt(j, "/message");
    if (j.is_object() && j.contains("errors") && j["errors"].is_array()) {
      for (const auto& e : j["errors"]) {
        std::string m = e.is_object() ? stringAt(e, "/message") : "";
        if (!m.empty()) message += (message.empty() ? "" : ": ") + m;
      }
    }
    return Error{response.status, response.status == 422 ? "Unprocessable" : "ForgeRefused",
                 "the forge answered " + std::to_string(response.status) + (message.empty() ? "" : ": " + message),
                 std::nullopt};
  }
  PullRequest pr;
  pr.url = stringAt(j, "/html_url");
  pr.number = static_cast<int>(intAt(j, "/number"));
  if (pr.url.empty() || pr.number == 0) {
    return Error{response.status, "ForgeAnswer", "the forge created the pull request but its answer has no html_url or number",
                 std::nullopt};
  }
  return pr;
}

std::string base64(std::string_view data) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t n = (uint8_t(data[i]) << 16) | (uint8_t(data[i + 1]) << 8) | uint8_t(data[i + 2]);
    for (int s : {18, 12, 6, 0}) out += alphabet[(n >> s) & 63];
  }
  if (size_t rest = data.size() - i; rest > 0) {
    uint32_t n = uint8_t(data[i]) << 16;
    if (rest == 2) n |= uint8_t(data[i + 1]) << 8;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += rest == 2 ? alphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string gitAuthorizationHeader(const std::string& token) {
  return "Authorization: Basic " + base64("x-access-token:" + token);
}

http::Request endpointRequest(const std::string& target, const std::string& token, const json& body) {
  http::Request req;
  req.method = http::Method::Post;
  req.target = target;
  req.headers = {{"Authorization", "Bearer " + token},
                 {"Content-Type", "application/json"},
                 {"Accept", "application/json"},
                 {"User-Agent", "paddock-stage"}};
  req.body = body.dump();
  return req;
}

}  // namespace paddock::stage
