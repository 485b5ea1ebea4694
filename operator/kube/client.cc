#include "operator/kube/client.h"

#include "operator/runtime/rate_limiter.h"

#include <algorithm>
#include <random>

namespace paddock::kube {
namespace {

bool retryable(int code) { return code == 429 || code == 500 || code == 502 || code == 503 || code == 504; }

http::Request jsonRequest(http::Method m, std::string target, const json& body, const char* content_type,
                          std::chrono::milliseconds timeout) {
  http::Request req{m, std::move(target)};
  if (!body.is_null()) {
    req.body = body.dump();
    req.headers.emplace_back("Content-Type", content_type);
  }
  req.timeout = timeout;
  return req;
}

}  // namespace

std::string Resource::path(const std::string& ns, const std::string& name, const std::string& subresource) const {
  std::string p = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  if (namespaced && !ns.empty()) p += "/namespaces/" + ns;
  p += "/" + plural;
  if (!name.empty()) p += "/" + name;
  if (!subresource.empty()) p += "/" + subresource;
  return p;
}

bool isTransient(const Error& e) { return e.code == 0 || retryable(e.code); }

Client::Client(RestClient& rest, ClientOptions options, RequestObserver observer)
    : rest_(rest), options_(options), observer_(std::move(observer)) {
  if (options_.qps > 0) limiter_ = std::make_unique<runtime::TokenBucket>(options_.qps, options_.burst);
}

Client::~Client() = default;

bool Client::throttle(const CancelToken& cancel) {
  if (!limiter_) return !cancel.cancelled();
  return limiter_->wait(cancel).ok();
}

Result<http::Response> Client::exchange(const char* verb, const Resource& r, http::Request request,
                                        const CancelToken& cancel) {
  static thread_local std::mt19937 rng(std::random_device{}());
  for (int attempt = 0;; ++attempt) {
    if (!throttle(cancel)) return Error::local("Cancelled", "request cancelled");
    auto start = std::chrono::steady_clock::now();
    auto resp = rest_.send(request, cancel);
    if (observer_) observer_(verb, r.plural, resp ? resp->status : 0, std::chrono::steady_clock::now() - start);
    // What may be retried (client-go's rules): a 429 or a 5xx the server asks us to retry
    // (Retry-After) was not acted on; other 5xx and transport failures may have been, so only
    // reads are repeated then.
    const bool read = request.method == http::Method::Get;
    std::optional<Error> failure;
    if (!resp) {
      const auto& reason = resp.error().reason;
      if (reason == "Cancelled" || (!read && reason != "NotSent")) return resp.error();
      failure = resp.error();
    } else if (retryable(resp->status)) {
      failure = errorFromResponse(*resp);
      if (!read && resp->status != 429 && !failure->retry_after) return resp;
    } else {
      return resp;
    }
    if (attempt >= options_.max_retries) return *failure;
    // Retry-After when the server gave one (at most retry_max), else exponential backoff with jitter.
    std::chrono::milliseconds delay;
    if (failure->retry_after) {
      delay = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(*failure->retry_after), options_.retry_max);
    } else {
      auto base = options_.retry_base * (1 << std::min(attempt, 16));
      base = std::min(base, options_.retry_max);
      delay = base / 2 + std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(0, base.count() / 2)(rng));
    }
    if (cancel.waitFor(delay)) return Error::local("Cancelled", "request cancelled");
  }
}

Result<http::Response> Client::stream(const Resource& r, http::Request request, const http::LineHandler& on_line,
                                     const CancelToken& cancel) {
  if (!throttle(cancel)) return Error::local("Cancelled", "request cancelled");
  auto start = std::chrono::steady_clock::now();
  auto resp = rest_.stream(std::move(request), on_line, cancel);
  if (observer_) observer_("watch", r.plural, resp ? resp->status : 0, std::chrono::steady_clock::now() - start);
  return resp;
}

Result<json> Client::call(const char* verb, const Resource& r, http::Request request, const CancelToken& cancel) {
  auto resp = exchange(verb, r, std::move(request), cancel);
  if (!resp) return resp.error();
  if (resp->status < 200 || resp->status >= 300) return errorFromResponse(*resp);
  auto body = json::parse(resp->body, nullptr, false);
  if (!body.is_object()) {
    return Error{resp->status, "InvalidResponse", std::string(verb) + " " + r.plural + ": response is not a JSON object", {}};
  }
  return body;
}

Result<json> Client::get(const Resource& r, const std::string& ns, const std::string& name, const CancelToken& cancel) {
  return call("get", r, jsonRequest(http::Method::Get, r.path(ns, name), nullptr, "", options_.timeout), cancel);
}

Result<ObjectList> Client::list(const Resource& r, const std::string& ns, const ListOptions& options,
                                const CancelToken& cancel) {
  ObjectList out;
  auto rv = listPages(r, ns, options, [&](std::vector<json>&& items) {
    for (auto& item : items) out.items.push_back(std::move(item));
  }, cancel);
  if (!rv) return rv.error();
  out.resource_version = *rv;
  return out;
}

Result<std::string> Client::listPages(const Resource& r, const std::string& ns, const ListOptions& options,
                                      const std::function<void(std::vector<json>&& items)>& on_page,
                                      const CancelToken& cancel) {
  std::string cont, resource_version;
  do {
    std::string target = r.path(ns) + "?limit=" + std::to_string(std::max(1, options.page_size));
    if (!options.label_selector.empty()) target += "&labelSelector=" + urlEncode(options.label_selector);
    if (!options.field_selector.empty()) target += "&fieldSelector=" + urlEncode(options.field_selector);
    if (!cont.empty()) target += "&continue=" + urlEncode(cont);
    auto page = call("list", r, jsonRequest(http::Method::Get, target, nullptr, "", options_.timeout), cancel);
    if (!page) return page.error();
    resource_version = page->value(json::json_pointer("/metadata/resourceVersion"), std::string());
    cont = page->value(json::json_pointer("/metadata/continue"), std::string());
    std::vector<json> items;
    if (auto it = page->find("items"); it != page->end() && it->is_array()) {
      items.reserve(it->size());
      for (auto& item : *it) items.push_back(std::move(item));
    }
    page.value() = nullptr;
    on_page(std::move(items));
  } while (!cont.empty());
  return resource_version;
}

Result<json> Client::create(const Resource& r, const std::string& ns, const json& object, const CancelToken& cancel) {
  return call("create", r, jsonRequest(http::Method::Post, r.path(ns), object, "application/json", options_.timeout),
              cancel);
}

Result<json> Client::replace(const Resource& r, const std::string& ns, const std::string& name, const json& object,
                             const std::string& subresource, const CancelToken& cancel) {
  return call(subresource.empty() ? "update" : "update-status", r,
              jsonRequest(http::Method::Put, r.path(ns, name, subresource), object, "application/json", options_.timeout),
              cancel);
}

Result<json> Client::apply(const Resource& r, const std::string& ns, const std::string& name, const json& object,
                           const std::string& field_manager, bool force, const std::string& subresource,
                           const CancelToken& cancel) {
  std::string target = r.path(ns, name, subresource) + "?fieldManager=" + urlEncode(field_manager);
  if (force) target += "&force=true";
  return call(subresource.empty() ? "apply" : "apply-status", r,
              jsonRequest(http::Method::Patch, target, object, "application/apply-patch+yaml", options_.timeout), cancel);
}

Result<json> Client::mergePatch(const Resource& r, const std::string& ns, const std::string& name, const json& patch,
                                const std::string& subresource, const CancelToken& cancel) {
  return call("patch", r,
              jsonRequest(http::Method::Patch, r.path(ns, name, subresource), patch, "application/merge-patch+json",
                          options_.timeout),
              cancel);
}

Result<json> Client::jsonPatch(const Resource& r, const std::string& ns, const std::string& name, const json& ops,
                               const std::string& subresource, const CancelToken& cancel) {
  return call("patch", r,
              jsonRequest(http::Method::Patch, r.path(ns, name, subresource), ops, "application/json-patch+json",
                          options_.timeout),
              cancel);
}

Status Client::remove(const Resource& r, const std::string& ns, const std::string& name, const DeleteOptions& options,
                      const CancelToken& cancel) {
  json body = {{"apiVersion", "v1"}, {"kind", "DeleteOptions"}};
  if (options.propagation) body["propagationPolicy"] = *options.propagation;
  if (options.grace_period_seconds) body["gracePeriodSeconds"] = *options.grace_period_seconds;
  if (options.precondition_uid) body["preconditions"]["uid"] = *options.precondition_uid;
  if (options.precondition_resource_version) body["preconditions"]["resourceVersion"] = *options.precondition_resource_version;
  auto resp = call("delete", r, jsonRequest(http::Method::Delete, r.path(ns, name), body, "application/json", options_.timeout),
                   cancel);
  if (!resp) return resp.error();
  return Ok{};
}

}  // namespace paddock::kube
