// A stand-in for GitHub's REST API on loopback, for the stage tests: it answers
// POST /repos/{owner}/{repo}/pulls as GitHub does (201 with number and html_url) after checking
// each request against GitHub's published OpenAPI description of `pulls/create`
// (github/rest-api-description): a JSON object whose properties are title, head, head_repo, base,
// body (strings), maintainer_can_modify, draft (booleans) and issue (integer), with head and base
// required and title required unless issue is given; plus what GitHub requires of every request
// (an Authorization header, a User-Agent, a JSON content type) and what it checks of a pull
// request (head and base exist as branches of the repository, here the local bare remote). A
// request that fails a check gets GitHub's 4xx answer and is recorded with its problems.
// It also serves POST /deploy as a deploy endpoint and POST /promote as its promotion endpoint,
// recording what they are sent.
//
// Not a real forge: building Gitea from the Go module proxy is too heavy for the test machine.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace paddock::stage::testing {

struct RecordedRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int status = 0;                     // what the stand-in answered
  std::vector<std::string> problems;  // why it refused, if it did

  std::string header(const std::string& name) const;
};

class ForgeStandin {
 public:
  // `owner`/`repo`: the repository it serves; `remote_git_dir`: the bare remote whose branches
  // head and base must name.
  ForgeStandin(std::string owner, std::string repo, std::string remote_git_dir);
  ~ForgeStandin();

  // Listens on `address` (loopback, or an address the test itself made: the node's veth) on a
  // free port; false when it cannot.
  bool start(const std::string& address = "127.0.0.1");
  void stop();
  int port() const { return port_; }
  std::string url() const { return "http://" + address_ + ":" + std::to_string(port_); }
  std::vector<RecordedRequest> requests() const;
  // The status POST /deploy answers (default 202).
  void setDeployStatus(int status) { deploy_status_ = status; }

  // The schema check of a pulls/create body, as a list of problems (empty: valid).
  static std::vector<std::string> checkPullsCreateBody(const nlohmann::json& body);

 private:
  void serve();
  void answer(int fd);
  RecordedRequest handle(RecordedRequest req, std::string& reply_body);
  bool branchExists(const std::string& branch) const;

  std::string owner_, repo_, remote_;
  std::string address_ = "127.0.0.1";
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> deploy_status_{202};
  int next_number_ = 1;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<RecordedRequest> requests_;
};

}  // namespace paddock::stage::testing
