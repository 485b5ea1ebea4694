#include "e2e/stage/forge_standin.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <map>

#include "stage/git.h"

namespace paddock::stage::testing {

using nlohmann::json;

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

const char* reasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    default: return "Status";
  }
}

}  // namespace

std::string RecordedRequest::header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (lower(k) == lower(name)) return v;
  }
  return "";
}

ForgeStandin::ForgeStandin(std::string owner, std::string repo, std::string remote_git_dir)
    : owner_(std::move(owner)), repo_(std::move(repo)), remote_(std::move(remote_git_dir)) {}

ForgeStandin::~ForgeStandin() { stop(); }

bool ForgeStandin::start(const std::string& address) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1) return false;
  address_ = address;
  addr.sin_port = 0;
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listen_fd_, 16) != 0) return false;
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { serve(); });
  return true;
}

void ForgeStandin::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  listen_fd_ = -1;
}

std::vector<RecordedRequest> ForgeStandin::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

void ForgeStandin::serve() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    answer(fd);
    close(fd);
  }
}

void ForgeStandin::answer(int fd) {
  // Reads one request: the head up to the blank line, then Content-Length bytes of body.
  std::string data;
  char buf[8192];
  size_t head_end = std::string::npos;
  size_t content_length = 0;
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) return;
    ssize_t r = read(fd, buf, sizeof buf);
    if (r <= 0) return;
    data.append(buf, static_cast<size_t>(r));
    if (head_end == std::string::npos && (head_end = data.find("\r\n\r\n")) != std::string::npos) {
      std::string head = lower(data.substr(0, head_end));
      size_t cl = head.find("\r\ncontent-length:");
      if (cl != std::string::npos) content_length = std::strtoul(head.c_str() + cl + 17, nullptr, 10);
    }
    if (head_end != std::string::npos && data.size() >= head_end + 4 + content_length) break;
  }
  RecordedRequest req;
  size_t line_end = data.find("\r\n");
  std::string request_line = data.substr(0, line_end);
  size_t sp1 = request_line.find(' '), sp2 = request_line.rfind(' ');
  req.method = request_line.substr(0, sp1);
  req.target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  for (size_t pos = line_end + 2; pos < head_end;) {
    size_t end = data.find("\r\n", pos);
    std::string line = data.substr(pos, end - pos);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      req.headers.push_back({line.substr(0, colon), value});
    }
    pos = end + 2;
  }
  req.body = data.substr(head_end + 4, content_length);

  std::string reply_body;
  RecordedRequest done = handle(std::move(req), reply_body);
  std::string reply = "HTTP/1.1 " + std::to_string(done.status) + " " + reasonPhrase(done.status) +
                      "\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: " +
                      std::to_string(reply_body.size()) + "\r\nConnection: close\r\n\r\n" + reply_body;
  for (size_t sent = 0; sent < reply.size();) {
    ssize_t w = write(fd, reply.data() + sent, reply.size() - sent);
    if (w <= 0) break;
    sent += static_cast<size_t>(w);
  }
  std::lock_guard<std::mutex> lock(mu_);
  requests_.push_back(std::move(done));
}

std::vector<std::string> ForgeStandin::checkPullsCreateBody(const json& body) {
  std::vector<std::string> problems;
  if (!body.is_object()) return {"the request body is not a JSON object"};
  static const std::map<std::string, json::value_t> properties = {
      {"title", json::value_t::string},   {"head", json::value_t::string},
      {"head_repo", json::value_t::string}, {"base", json::value_t::string},
      {"body", json::value_t::string},    {"maintainer_can_modify", json::value_t::boolean},
      {"draft", json::value_t::boolean},  {"issue", json::value_t::number_integer},
  };
  for (const auto& [key, value] : body.items()) {
    auto it = properties.find(key);
    if (it == properties.end()) {
      problems.push_back(key + " is not a property of pulls/create");
      continue;
    }
    bool ok = value.type() == it->second ||
              (it->second == json::value_t::number_integer && value.type() == json::value_t::number_unsigned);
    if (!ok) problems.push_back(key + " is not a " + json(it->second).type_name() + " but " + value.type_name());
  }
  for (const char* required : {"head", "base"}) {
    if (!body.contains(required)) problems.push_back(std::string(required) + " is required");
  }
  if (!body.contains("title") && !body.contains("issue")) problems.push_back("title is required unless issue is given");
  return problems;
}

bool ForgeStandin::branchExists(const std::string& branch) const {
  auto out = runProcess({"git", "--git-dir=" + remote_, "rev-parse", "--verify", "-q", "refs/heads/" + branch},
                        {"PATH=" + std::string(std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin"),
                         "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"});
  return out.ok() && out->exit_code == 0;
}

RecordedRequest ForgeStandin::handle(RecordedRequest req, std::string& reply) {
  auto refuse = [&](int status, std::string message) {
    req.status = status;
    json errors = json::array();
    for (const auto& p : req.problems) errors.push_back({{"resource", "PullRequest"}, {"code", "invalid"}, {"message", p}});
    json j = {{"message", message}, {"documentation_url", "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"}};
    if (!errors.empty()) j["errors"] = errors;
    reply = j.dump();
    return req;
  };
  std::string content_type = lower(req.header("Content-Type"));
  if (req.method == "POST" && req.target == "/deploy") {
    if (req.header("Authorization").rfind("Bearer ", 0) != 0) return refuse(401, "Requires authentication");
    req.status = deploy_status_;
    reply = req.status < 300 ? json{{"id", "rel-1"}, {"status", "staged"}, {"environment", "staging"}}.dump()
                             : json{{"message", "deploy refused by the stand-in"}}.dump();
    return req;
  }
  if (req.method == "POST" && req.target == "/promote") {
    if (req.header("Authorization").rfind("Bearer ", 0) != 0) return refuse(401, "Requires authentication");
    json body = json::parse(req.body, nullptr, false);
    req.status = deploy_status_;
    reply = req.status < 300 ? json{{"id", body.is_object() ? body.value("release", "") : ""}, {"status", "promoted"},
                                    {"environment", "production"}}.dump()
                             : json{{"message", "promotion refused by the stand-in"}}.dump();
    return req;
  }
  std::string pulls = "/repos/" + owner_ + "/" + repo_ + "/pulls";
  if (req.target != pulls) return refuse(404, "Not Found");
  if (req.method != "POST") return refuse(404, "Not Found");
  if (req.header("Authorization").empty()) return refuse(401, "Requires authentication");
  if (req.header("User-Agent").empty()) {
    req.problems.push_back("no User-Agent header");
    return refuse(403, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header");
  }
  std::string accept = lower(req.header("Accept"));
  if (!accept.empty() && accept.find("application/vnd.github") == std::string::npos &&
      accept.find("application/json") == std::string::npos && accept != "*/*") {
    req.problems.push_back("Accept is " + accept);
    return refuse(415, "Unsupported 'Accept' header");
  }
  if (content_type.rfind("application/json", 0) != 0) {
    req.problems.push_back("Content-Type is " + content_type);
    return refuse(415, "Unsupported Media Type");
  }
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded()) return refuse(400, "Problems parsing JSON");
  req.problems = checkPullsCreateBody(body);
  if (!req.problems.empty()) return refuse(422, "Invalid request.");
  std::string head = body["head"], base = body["base"];
  if (!branchExists(head)) req.problems.push_back("head " + head + " is not a branch of " + owner_ + "/" + repo_);
  if (!branchExists(base)) req.problems.push_back("base " + base + " is not a branch of " + owner_ + "/" + repo_);
  if (!req.problems.empty()) return refuse(422, "Validation Failed");

  int number = next_number_++;
  std::string html = "https://github.com/" + owner_ + "/" + repo_ + "/pull/" + std::to_string(number);
  req.status = 201;
  reply = json{{"id", 1000 + number},
               {"number", number},
               {"state", "open"},
               {"locked", false},
               {"title", body.value("title", "")},
               {"body", body.value("body", "")},
               {"draft", body.value("draft", false)},
               {"merged", false},
               {"url", "https://api.github.com" + pulls + "/" + std::to_string(number)},
               {"html_url", html},
               {"head", {{"ref", head}, {"label", owner_ + ":" + head}}},
               {"base", {{"ref", base}, {"label", owner_ + ":" + base}}}}
              .dump();
  return req;
}

}  // namespace paddock::stage::testing
