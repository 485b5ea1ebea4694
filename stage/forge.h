// The forge's REST API (GitHub's; Gitea's), and the deploy endpoint, as pure request builders and
// response readers; stage/stages.cc sends them through http::Client. Tokens go only into
// Authorization headers, never into URLs.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "operator/common/result.h"
#include "operator/http/client.h"

namespace paddock::stage {

// "https://host:port/some/path?q" as the client's base URL ("https://host:port") and the
// request target ("/some/path?q", "/" when empty).
struct UrlParts {
  std::string origin;
  std::string target;
};
Result<UrlParts> splitUrl(const std::string& url);

enum class ForgeKind { GitHub, Gitea };

struct Forge {
  ForgeKind kind = ForgeKind::GitHub;
  std::string api_url;  // without a trailing slash: https://api.github.com, https://gitea.example/api/v1
  std::string owner;
  std::string repo;
};

// The forge a repository URL lives on. `kind` is "github", "gitea" or "" (github.com and
// anything else: GitHub's API); `api_url` and `repository` ("owner/name") override what the URL
// says (GitHub Enterprise, a stand-in, a file:// remote).
// https://github.com/o/r(.git), git@github.com:o/r.git and ssh://git@host/o/r.git are understood;
// api_url defaults to https://api.github.com for github.com, https://HOST/api/v3 for other GitHub
// hosts and https://HOST/api/v1 for Gitea.
Result<Forge> forgeFor(const std::string& repository_url, const std::string& kind, const std::string& api_url,
                       const std::string& repository);

struct PullRequestSpec {
  std::string title;
  std::string head;  // the pushed branch
  std::string base;
  std::string body;
  bool draft = false;  // partial work: GitHub's draft flag; Gitea's "WIP: " title prefix
};

// GitHub: POST {api}/repos/{owner}/{repo}/pulls with {title, head, base, body, draft,
// maintainer_can_modify:false}; Gitea: POST {api}/repos/{owner}/{repo}/pulls with
// {title, head, base, body}, a draft's title starting "WIP: " (Gitea's work-in-progress prefix). `target_prefix` is the API URL's path ("" or "/api/v3").
http::Request pullRequestRequest(const Forge& forge, const std::string& target_prefix, const std::string& token,
                                 const PullRequestSpec& spec);

struct PullRequest {
  std::string url;  // html_url
  int number = 0;
};
// A 201 with html_url and number; any other answer is an error that quotes the forge's message.
Result<PullRequest> readPullRequestResponse(const http::Response& response);

// The header git sends to the remote (as http.extraHeader): HTTP Basic with the user
// x-access-token and the token as password, which GitHub and Gitea accept for HTTPS pushes.
std::string gitAuthorizationHeader(const std::string& token);

std::string base64(std::string_view data);

// A request to the deploy endpoint: POST `body` as JSON with the deploy token as a bearer token.
http::Request endpointRequest(const std::string& target, const std::string& token, const nlohmann::json& body);

}  // namespace paddock::stage
