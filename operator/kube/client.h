// The Kubernetes API client: typed paths for any resource, the verbs Paddock uses, a client-side
// rate limit, and retries with backoff for 429 and 5xx that honour Retry-After. Objects are JSON.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "operator/common/cancel.h"
#include "operator/common/result.h"
#include "operator/kube/rest.h"

namespace paddock::runtime {
class TokenBucket;
}

namespace paddock::kube {

using nlohmann::json;

// Where a kind's objects live in the API.
struct Resource {
  std::string group;    // "" for the core group
  std::string version;  // "v1"
  std::string plural;   // "pods"
  bool namespaced = true;

  // "/api/v1/namespaces/ns/pods/name/status" and the like; empty parts are left out.
  std::string path(const std::string& ns = "", const std::string& name = "", const std::string& subresource = "") const;
  std::string apiVersion() const { return group.empty() ? version : group + "/" + version; }
};

namespace resources {
inline const Resource namespaces{"", "v1", "namespaces", false};
inline const Resource pods{"", "v1", "pods", true};
inline const Resource configmaps{"", "v1", "configmaps", true};
inline const Resource secrets{"", "v1", "secrets", true};
inline const Resource services{"", "v1", "services", true};
inline const Resource deployments{"apps", "v1", "deployments", true};
inline const Resource networkpolicies{"networking.k8s.io", "v1", "networkpolicies", true};
inline const Resource leases{"coordination.k8s.io", "v1", "leases", true};
inline const Resource events{"events.k8s.io", "v1", "events", true};
inline const Resource agentpolicies{"paddock.dev", "v1alpha1", "agentpolicies", false};
inline const Resource agentruns{"paddock.dev", "v1alpha1", "agentruns", true};
inline const Resource agentapprovals{"paddock.dev", "v1alpha1", "agentapprovals", true};
inline const Resource persistentvolumeclaims{"", "v1", "persistentvolumeclaims", true};
inline const Resource subjectaccessreviews{"authorization.k8s.io", "v1", "subjectaccessreviews", false};
}  // namespace resources

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  int page_size = 500;  // limit per request; list() follows `continue` until the end
};

struct ObjectList {
  std::vector<json> items;
  std::string resource_version;  // of the list, to start a watch from
};

struct DeleteOptions {
  std::optional<std::string> propagation;  // "Foreground", "Background" or "Orphan"
  std::optional<int> grace_period_seconds;
  std::optional<std::string> precondition_uid;
  std::optional<std::string> precondition_resource_version;
};

struct ClientOptions {
  double qps = 20;      // client-side request rate limit; <= 0 disables it
  int burst = 30;
  int max_retries = 4;  // for 429, 5xx and transport failures
  std::chrono::milliseconds retry_base{200};
  std::chrono::milliseconds retry_max{10'000};
  std::chrono::milliseconds timeout{30'000};
};

// Called once per HTTP exchange (retries included): verb, resource plural, status code (0 when
// no response), latency. Metrics hang off this.
using RequestObserver = std::function<void(const std::string& verb, const std::string& resource, int code,
                                           std::chrono::duration<double> latency)>;

class Client {
 public:
  Client(RestClient& rest, ClientOptions options, RequestObserver observer = nullptr);
  ~Client();

  Result<json> get(const Resource& r, const std::string& ns, const std::string& name, const CancelToken& cancel = {});
  Result<ObjectList> list(const Resource& r, const std::string& ns, const ListOptions& options = {},
                          const CancelToken& cancel = {});
  // Like list(), but hands each page's items to `on_page` as it arrives instead of keeping them
  // all, so memory holds one page at a time. Returns the list's resourceVersion.
  Result<std::string> listPages(const Resource& r, const std::string& ns, const ListOptions& options,
                                const std::function<void(std::vector<json>&& items)>& on_page,
                                const CancelToken& cancel = {});
  Result<json> create(const Resource& r, const std::string& ns, const json& object, const CancelToken& cancel = {});
  // PUT: replaces the object (or its subresource); the object's resourceVersion, when set,
  // makes it conditional (409 Conflict when stale).
  Result<json> replace(const Resource& r, const std::string& ns, const std::string& name, const json& object,
                       const std::string& subresource = "", const CancelToken& cancel = {});
  // Server-side apply as `field_manager`. Applying an unchanged configuration writes nothing.
  Result<json> apply(const Resource& r, const std::string& ns, const std::string& name, const json& object,
                     const std::string& field_manager, bool force = true, const std::string& subresource = "",
                     const CancelToken& cancel = {});
  Result<json> mergePatch(const Resource& r, const std::string& ns, const std::string& name, const json& patch,
                          const std::string& subresource = "", const CancelToken& cancel = {});
  // RFC 6902 JSON patch; a failing `test` op fails the whole patch (422), so concurrent writers
  // cannot clobber each other.
  Result<json> jsonPatch(const Resource& r, const std::string& ns, const std::string& name, const json& ops,
                         const std::string& subresource = "", const CancelToken& cancel = {});
  Status remove(const Resource& r, const std::string& ns, const std::string& name, const DeleteOptions& options = {},
                const CancelToken& cancel = {});

  // A streaming GET (a watch) of `r`: rate-limited like every request and reported to the
  // observer (verb "watch") when it ends. See http::Client::stream.
  Result<http::Response> stream(const Resource& r, http::Request request, const http::LineHandler& on_line,
                                const CancelToken& cancel = {});

  RestClient& rest() { return rest_; }

  // Waits for the rate limiter; false when cancelled first. Watches call this too.
  bool throttle(const CancelToken& cancel);

 private:
  Result<json> call(const char* verb, const Resource& r, http::Request request, const CancelToken& cancel);
  Result<http::Response> exchange(const char* verb, const Resource& r, http::Request request, const CancelToken& cancel);

  RestClient& rest_;
  ClientOptions options_;
  RequestObserver observer_;
  std::unique_ptr<runtime::TokenBucket> limiter_;
};

using http::urlEncode;

// True for the errors a caller may retry later (throttling, server errors, transport).
bool isTransient(const Error& e);

}  // namespace paddock::kube
