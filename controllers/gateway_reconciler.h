// The gateway reconciler: one key per namespace, the I/O shell around planNamespaceGateway
// (controllers/gateway.h).
//   gather   the namespace's governing policy (namespaces and policies caches), the runs the
//            gateway serves (kept from the runs informer's events, per namespace), and the
//            namespace's four gateway objects as the API server has them (one GET each: the
//            operator caches neither ConfigMaps nor Deployments)
//   plan     planNamespaceGateway: apply what is missing, planned anew or edited; delete the
//            gateway once no unfinished run needs it
//   execute  server-side apply (forced) or delete, in the plan's order; an edited object deleted
//            (by UID) and made again, with a Warning Event
// Only events that concern a gateway queue a namespace: a run's credential issued or its end, a
// change of a policy with (or that had) spec.gateway, a relabelled namespace that has gateway
// runs. A namespace with a gateway is looked at again every `resync`, so an edit is undone within
// it: an edited object is deleted and made again from its plan. In memory it keeps only an index
// of each namespace's gateway runs, rebuilt from the runs informer.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "controllers/gateway.h"
#include "operator/kube/client.h"
#include "operator/kube/informer.h"
#include "operator/runtime/controller.h"
#include "operator/runtime/events.h"

namespace paddock::controllers {

struct GatewayReconcilerOptions {
  PlanOptions plan;
  std::chrono::milliseconds resync{30'000};
  std::string field_manager = "paddock-operator";
};

class GatewayReconciler : public runtime::Reconciler {
 public:
  // `pods` and `network_policies` are the operator's caches of its own pods and NetworkPolicies:
  // where a gateway pod or NetworkPolicy is, a gateway may be left to delete.
  GatewayReconciler(kube::Client& client, kube::Informer& policies, kube::Informer& namespaces, kube::Informer& pods,
                    kube::Informer& network_policies, runtime::EventRecorder* events, GatewayReconcilerOptions options)
      : client_(client), policies_(policies), namespaces_(namespaces), pods_(pods), network_policies_(network_policies),
        events_(events), options_(std::move(options)) {}

  // `key` is a namespace's name.
  runtime::ReconcileResult reconcile(const std::string& key, const CancelToken& cancel) override;

  // Feed it every event of the runs informer: it keeps each namespace's runs the gateway serves,
  // and returns the namespace when they changed (a credential issued, a run ended or deleted).
  std::vector<std::string> observeRun(const kube::InformerEvent& e);
  // A policy's event: the namespaces with gateway runs, when the policy has or had spec.gateway
  // and its spec changed (its generation; a status write alone concerns no gateway).
  std::vector<std::string> namespacesOfPolicy(const kube::InformerEvent& e) const;
  // A namespace's event (its labels decide its policy): its name, when it has gateway runs.
  std::vector<std::string> namespaceOf(const kube::InformerEvent& e) const;
  // What a new leader looks at: the namespaces with gateway runs, a gateway pod or the gateway's
  // NetworkPolicy (caches; the NetworkPolicy is deleted last), so a gateway left behind by a crash
  // still goes.
  std::vector<std::string> namespacesToLookAt() const;

 private:
  std::vector<GatewayRun> runsOf(const std::string& ns) const;

  kube::Client& client_;
  kube::Informer& policies_;
  kube::Informer& namespaces_;
  kube::Informer& pods_;
  kube::Informer& network_policies_;
  runtime::EventRecorder* events_;
  GatewayReconcilerOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, GatewayRun>> runs_;  // guarded; namespace -> run name -> as served
};

}  // namespace paddock::controllers
