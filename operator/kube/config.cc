#include "operator/kube/config.h"

#include "operator/common/log.h"

#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace paddock::kube {
namespace fs = std::filesystem;
namespace {

Result<std::string> readFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::local("InvalidConfig", what + ": cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trim(std::string s) {
  auto b = s.find_first_not_of(" \t\r\n");
  auto e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

struct Named {
  YAML::Node node;
  fs::path dir;  // directory of the file that defined it
};

// Reads "<field>-data" (base64) or "<field>" (a file path) from a kubeconfig section.
Result<std::string> material(const Named& n, const std::string& field, const std::string& what) {
  if (auto data = n.node[field + "-data"]) {
    std::string out;
    if (!base64Decode(data.as<std::string>(), out)) {
      return Error::local("InvalidConfig", what + ": " + field + "-data is not valid base64");
    }
    return out;
  }
  if (auto file = n.node[field]) {
    fs::path p = file.as<std::string>();
    if (p.is_relative()) p = n.dir / p;
    return readFile(p.string(), what + " " + field);
  }
  return std::string();
}

}  // namespace

bool base64Decode(const std::string& in, std::string& out) {
  std::string clean;
  for (char c : in) {
    if (!std::isspace(static_cast<unsigned char>(c))) clean.push_back(c);
  }
  if (clean.size() % 4 != 0) return false;
  out.assign(clean.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(clean.data()), static_cast<int>(clean.size()));
  if (n < 0) return false;
  size_t pad = 0;
  if (!clean.empty() && clean.back() == '=') pad++;
  if (clean.size() > 1 && clean[clean.size() - 2] == '=') pad++;
  out.resize(static_cast<size_t>(n) - pad);
  return true;
}

Result<ClusterConfig> loadKubeconfig(const std::vector<std::string>& paths, const std::string& context_override) {
  std::map<std::string, Named> clusters, users, contexts;
  std::string current;
  std::vector<std::string> read;
  for (const auto& path : paths) {
    std::error_code ec;
    if (path.empty() || !fs::exists(path, ec)) continue;
    YAML::Node doc;
    try {
      doc = YAML::LoadFile(path);
    } catch (const std::exception& e) {
      return Error::local("InvalidConfig", "kubeconfig " + path + " is not valid YAML: " + e.what());
    }
    read.push_back(path);
    fs::path dir = fs::absolute(path, ec).parent_path();
    auto collect = [&](const char* list, const char* inner, std::map<std::string, Named>& into) {
      for (const auto& item : doc[list]) {
        if (!item["name"]) continue;
        into.emplace(item["name"].as<std::string>(), Named{item[inner], dir});
      }
    };
    try {
      collect("clusters", "cluster", clusters);
      collect("users", "user", users);
      collect("contexts", "context", contexts);
      if (current.empty() && doc["current-context"]) current = doc["current-context"].as<std::string>();
    } catch (const std::exception& e) {
      return Error::local("InvalidConfig", "kubeconfig " + path + ": " + e.what());
    }
  }
  if (read.empty()) {
    std::string list;
    for (const auto& p : paths) list += (list.empty() ? "" : ", ") + p;
    return Error::local("InvalidConfig", "no kubeconfig file found (looked for: " + list + ")");
  }
  std::string name = context_override.empty() ? current : context_override;
  if (name.empty()) return Error::local("InvalidConfig", "kubeconfig sets no current-context; pass --context");
  auto ctx = contexts.find(name);
  if (ctx == contexts.end()) return Error::local("InvalidConfig", "kubeconfig has no context \"" + name + "\"");

  try {
    ClusterConfig out;
    out.source = "kubeconfig " + read.front() + " (context " + name + ")";
    std::string cluster_name = ctx->second.node["cluster"].as<std::string>("");
    std::string user_name = ctx->second.node["user"].as<std::string>("");
    out.default_namespace = ctx->second.node["namespace"].as<std::string>("default");
    auto cl = clusters.find(cluster_name);
    if (cl == clusters.end()) {
      return Error::local("InvalidConfig", "context \"" + name + "\" names cluster \"" + cluster_name + "\", which is not defined");
    }
    out.server = cl->second.node["server"].as<std::string>("");
    if (out.server.empty()) return Error::local("InvalidConfig", "cluster \"" + cluster_name + "\" has no server");
    out.tls.insecure_skip_verify = cl->second.node["insecure-skip-tls-verify"].as<bool>(false);
    auto ca = material(cl->second, "certificate-authority", "cluster \"" + cluster_name + "\"");
    if (!ca) return ca.error();
    out.tls.ca_pem = *ca;
    if (out.tls.insecure_skip_verify && !out.tls.ca_pem.empty()) {
      return Error::local("InvalidConfig", "cluster \"" + cluster_name +
                                               "\" sets both a certificate authority and insecure-skip-tls-verify; "
                                               "remove one of them");
    }

    if (!user_name.empty()) {
      auto us = users.find(user_name);
      if (us == users.end()) {
        return Error::local("InvalidConfig", "context \"" + name + "\" names user \"" + user_name + "\", which is not defined");
      }
      std::string what = "user \"" + user_name + "\"";
      auto cert = material(us->second, "client-certificate", what);
      if (!cert) return cert.error();
      auto key = material(us->second, "client-key", what);
      if (!key) return key.error();
      out.tls.cert_pem = *cert;
      out.tls.key_pem = *key;
      out.token = us->second.node["token"].as<std::string>("");
      if (auto tf = us->second.node["tokenFile"]) {
        fs::path p = tf.as<std::string>();
        if (p.is_relative()) p = us->second.dir / p;
        out.token_file = p.string();
      }
      if (us->second.node["exec"] || us->second.node["auth-provider"]) {
        return Error::local("InvalidConfig", what + " uses an exec or auth-provider plugin, which Paddock does not run; "
                                             "use a client certificate or a token");
      }
    }
    return out;
  } catch (const std::exception& e) {
    return Error::local("InvalidConfig", "kubeconfig: " + std::string(e.what()));
  }
}

Result<ClusterConfig> loadInCluster(const std::string& dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host || !port || !*port) {
    return Error::local("InvalidConfig", "not running in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set");
  }
  ClusterConfig out;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";
  out.server = "https://" + h + ":" + port;
  auto ca = readFile(dir + "/ca.crt", "in-cluster CA");
  if (!ca) return ca.error();
  out.tls.ca_pem = *ca;
  out.token_file = dir + "/token";
  if (auto t = readFile(out.token_file, "in-cluster token"); !t) return t.error();
  if (auto ns = readFile(dir + "/namespace", "in-cluster namespace")) out.default_namespace = trim(*ns);
  out.source = "in-cluster service account";
  return out;
}

Result<ClusterConfig> resolveConfig(const std::string& kubeconfig_flag, const std::string& context) {
  if (!kubeconfig_flag.empty()) {
    std::error_code ec;
    if (!fs::exists(kubeconfig_flag, ec)) {
      return Error::local("InvalidConfig", "--kubeconfig " + kubeconfig_flag + " does not exist");
    }
    return loadKubeconfig({kubeconfig_flag}, context);
  }
  if (const char* env = std::getenv("KUBECONFIG"); env && *env) {
    std::vector<std::string> paths;
    std::stringstream ss(env);
    for (std::string p; std::getline(ss, p, ':');) paths.push_back(p);
    return loadKubeconfig(paths, context);
  }
  if (const char* host = std::getenv("KUBERNETES_SERVICE_HOST"); host && *host) return loadInCluster();
  const char* home = std::getenv("HOME");
  return loadKubeconfig({std::string(home ? home : "") + "/.kube/config"}, context);
}

std::string BearerToken::current() {
  std::lock_guard lock(mu_);
  if (file_.empty()) return token_;
  auto now = clock_.now();
  if (token_.empty() || now - read_at_ >= std::chrono::minutes(1)) {
    read_at_ = now;  // also after a failure, so a missing file is not read on every request
    if (auto t = readFile(file_, "token file")) {
      token_ = trim(*t);
    } else {
      log::warn(token_.empty() ? "cannot read the bearer token file; requests go unauthenticated"
                               : "cannot read the bearer token file; keeping the last token read",
                {{"file", file_}});
    }
  }
  return token_;
}

}  // namespace paddock::kube
