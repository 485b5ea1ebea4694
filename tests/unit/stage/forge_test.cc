#include "stage/forge.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace paddock::stage {
namespace {

using nlohmann::json;

TEST(StageForge, FromRepositoryUrls) {
  auto f = forgeFor("https://github.com/acme/shop.git", "", "", "");
  ASSERT_TRUE(f.ok()) << f.error().describe();
  EXPECT_EQ(f->api_url, "https://api.github.com");
  EXPECT_EQ(f->owner, "acme");
  EXPECT_EQ(f->repo, "shop");
  f = forgeFor("git@github.example.com:acme/shop.git", "github", "", "");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->api_url, "https://github.example.com/api/v3");
  f = forgeFor("https://gitea.example.com/acme/shop", "gitea", "", "");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->kind, ForgeKind::Gitea);
  EXPECT_EQ(f->api_url, "https://gitea.example.com/api/v1");
  f = forgeFor("file:///tmp/remote.git", "", "http://127.0.0.1:1234/", "acme/shop");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->api_url, "http://127.0.0.1:1234");
  EXPECT_FALSE(forgeFor("file:///tmp/remote.git", "", "", "acme/shop").ok());
  EXPECT_FALSE(forgeFor("https://github.com/acme/shop", "bitbucket", "", "").ok());
}

TEST(StageForge, GitHubPullRequestRequest) {
  Forge f{ForgeKind::GitHub, "https://api.github.com", "acme", "shop"};
  auto req = pullRequestRequest(f, "", "TOKEN", {"Fix", "paddock/r1", "main", "Body"});
  EXPECT_EQ(req.method, http::Method::Post);
  EXPECT_EQ(req.target, "/repos/acme/shop/pulls");
  EXPECT_EQ(json::parse(req.body), json::parse(R"({"title":"Fix","head":"paddock/r1","base":"main","body":"Body",
      "draft":false,"maintainer_can_modify":false})"));
  http::Response headers{0, req.headers, ""};
  EXPECT_EQ(headers.header("authorization"), "Bearer TOKEN");
  EXPECT_EQ(headers.header("content-type"), "application/json");
  EXPECT_EQ(headers.header("x-github-api-version"), "2022-11-28");
  EXPECT_FALSE(headers.header("user-agent").empty());
  EXPECT_EQ(req.target.find("TOKEN"), std::string::npos);

  Forge g{ForgeKind::Gitea, "https://gitea.example.com/api/v1", "acme", "shop"};
  req = pullRequestRequest(g, "/api/v1", "TOKEN", {"Fix", "paddock/r1", "main", "Body"});
  EXPECT_EQ(req.target, "/api/v1/repos/acme/shop/pulls");
  EXPECT_FALSE(json::parse(req.body).contains("draft"));
  EXPECT_EQ(json::parse(req.body)["title"], "Fix");
}

TEST(StageForge, PartialWorkIsADraftOnEitherForge) {
  Forge f{ForgeKind::GitHub, "https://api.github.com", "acme", "shop"};
  auto body = json::parse(pullRequestRequest(f, "", "TOKEN", {"Fix", "paddock/r1", "main", "Body", true}).body);
  EXPECT_EQ(body["draft"], true);
  EXPECT_EQ(body["title"], "Fix");
  // Gitea has no draft flag: its work-in-progress title prefix marks it.
  Forge g{ForgeKind::Gitea, "https://gitea.example.com/api/v1", "acme", "shop"};
  body = json::parse(pullRequestRequest(g, "/api/v1", "TOKEN", {"Fix", "paddock/r1", "main", "Body", true}).body);
  EXPECT_EQ(body["title"], "WIP: Fix");
  EXPECT_FALSE(body.contains("draft"));
}

TEST(StageForge, PullRequestResponses) {
  auto pr = readPullRequestResponse({201, {}, R"({"number":42,"html_url":"https://github.com/acme/shop/pull/42"})"});
  ASSERT_TRUE(pr.ok());
  EXPECT_EQ(pr->number, 42);
  EXPECT_EQ(pr->url, "https://github.com/acme/shop/pull/42");
  auto refused = readPullRequestResponse(
      {422, {}, R"({"message":"Validation Failed","errors":[{"message":"A pull request already exists for acme:paddock/r1."}]})"});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, 422);
  EXPECT_NE(refused.error().message.find("already exists"), std::string::npos);
  EXPECT_FALSE(readPullRequestResponse({201, {}, "{}"}).ok());
}

TEST(StageForge, UrlsAndHeaders) {
  auto u = splitUrl("https://deploy.example.com:8443/v1/releases?dry=1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->origin, "https://deploy.example.com:8443");
  EXPECT_EQ(u->target, "/v1/releases?dry=1");
  EXPECT_EQ(splitUrl("http://127.0.0.1:80")->target, "/");
  EXPECT_FALSE(splitUrl("https://user:pw@example.com/x").ok());
  EXPECT_FALSE(splitUrl("ftp://example.com/").ok());
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(gitAuthorizationHeader("t"), "Authorization: Basic " + base64("x-access-token:t"));
  auto d = endpointRequest("/v1/releases", "DT", json{{"run", "r1"}, {"stage", "promote"}, {"release", "rel-1"}});
  EXPECT_EQ(d.target, "/v1/releases");
  EXPECT_EQ(json::parse(d.body), json::parse(R"({"run":"r1","stage":"promote","release":"rel-1"})"));
  EXPECT_EQ(http::Response({0, d.headers, ""}).header("Authorization"), "Bearer DT");
}

}  // namespace
}  // namespace paddock::stage
