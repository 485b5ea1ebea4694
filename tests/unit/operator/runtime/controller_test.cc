#include "operator/runtime/controller.h"

#include <gtest/gtest.h>

#include <deque>

#include "tests/unit/operator/common/fake_clock.h"

namespace paddock::runtime {
namespace {

// Returns scripted results, one per call, and records the keys it saw.
class ScriptedReconciler : public Reconciler {
 public:
  std::deque<ReconcileResult> script;
  std::vector<std::string> seen;
  ReconcileResult reconcile(const std::string& key, const CancelToken&) override {
    seen.push_back(key);
    auto r = script.front();
    script.pop_front();
    return r;
  }
};

class ControllerTest : public ::testing::Test {
 protected:
  FakeClock clock;
  WorkQueue queue{WorkQueueOptions{&clock, nullptr, nullptr}};
  ScriptedReconciler reconciler;
  std::vector<std::string> results;
  Controller controller{"test", reconciler, queue,
                        [this](const std::string& r, std::chrono::duration<double>) { results.push_back(r); }};
  CancelToken cancel;
};

TEST_F(ControllerTest, SuccessForgetsAndRequeueComesBackAfterTheDelay) {
  reconciler.script = {Action::requeueAfter(std::chrono::seconds(30)), Action::awaitChange()};
  queue.add("ns/a");
  ASSERT_TRUE(controller.processNext(cancel));
  EXPECT_EQ(queue.len(), 0u) << "not back before its delay";
  clock.advance(std::chrono::seconds(30));
  EXPECT_EQ(queue.len(), 1u);
  ASSERT_TRUE(controller.processNext(cancel));
  EXPECT_EQ(queue.len(), 0u);
  EXPECT_EQ(results, (std::vector<std::string>{"requeue", "success"}));
}

TEST_F(ControllerTest, TransientAndConflictErrorsBackOffTerminalDoesNot) {
  reconciler.script = {ReconcileError{ReconcileError::Kind::Transient, "503"},
                       ReconcileError{ReconcileError::Kind::Conflict, "409"},
                       ReconcileError{ReconcileError::Kind::Terminal, "422"}};
  queue.add("ns/a");
  ASSERT_TRUE(controller.processNext(cancel));
  EXPECT_EQ(queue.numRequeues("ns/a"), 1);
  EXPECT_EQ(queue.len(), 0u) << "a retry waits for its backoff";
  clock.advance(std::chrono::milliseconds(5));
  ASSERT_EQ(queue.len(), 1u);
  ASSERT_TRUE(controller.processNext(cancel));
  EXPECT_EQ(queue.numRequeues("ns/a"), 2);
  clock.advance(std::chrono::milliseconds(10));
  ASSERT_TRUE(controller.processNext(cancel));
  EXPECT_EQ(queue.numRequeues("ns/a"), 0) << "a terminal error is not retried";
  clock.advance(std::chrono::hours(1));
  EXPECT_EQ(queue.len(), 0u);
  EXPECT_EQ(results, (std::vector<std::string>{"transient", "conflict", "terminal"}));
}

TEST_F(ControllerTest, AReconcileThatThrowsIsRetried) {
  class Throwing : public Reconciler {
    ReconcileResult reconcile(const std::string&, const CancelToken&) override { throw std::runtime_error("bug"); }
  } throwing;
  Controller c("throwing", throwing, queue);
  queue.add("k");
  ASSERT_TRUE(c.processNext(cancel));
  EXPECT_EQ(queue.numRequeues("k"), 1);
}

TEST(ReconcileErrorFrom, ClassifiesApiErrors) {
  EXPECT_EQ(reconcileErrorFrom(Error{409, "Conflict", "stale", {}}).kind, ReconcileError::Kind::Conflict);
  EXPECT_EQ(reconcileErrorFrom(Error{503, "ServiceUnavailable", "", {}}).kind, ReconcileError::Kind::Transient);
  EXPECT_EQ(reconcileErrorFrom(Error{429, "TooManyRequests", "", {}}).kind, ReconcileError::Kind::Transient);
  EXPECT_EQ(reconcileErrorFrom(Error::local("Transport", "reset")).kind, ReconcileError::Kind::Transient);
  EXPECT_EQ(reconcileErrorFrom(Error{401, "Unauthorized", "", {}}).kind, ReconcileError::Kind::Transient);
  EXPECT_EQ(reconcileErrorFrom(Error{410, "Expired", "", {}}).kind, ReconcileError::Kind::Transient);
  EXPECT_EQ(reconcileErrorFrom(Error{422, "Invalid", "", {}}).kind, ReconcileError::Kind::Terminal);
  EXPECT_EQ(reconcileErrorFrom(Error{403, "Forbidden", "", {}}).kind, ReconcileError::Kind::Terminal);
}

TEST(ControllerOwnerKey, FollowsOnlyTheControllerReferenceOfThatKind) {
  auto pod = nlohmann::json::parse(R"({"metadata":{"namespace":"team","name":"run-agent","ownerReferences":[
      {"kind":"ConfigMap","name":"x","controller":false},
      {"kind":"AgentRun","name":"run","controller":true}]}})");
  EXPECT_EQ(controllerOwnerKey(pod, "AgentRun"), "team/run");
  EXPECT_EQ(controllerOwnerKey(pod, "Job"), std::nullopt);
  EXPECT_EQ(controllerOwnerKey(nlohmann::json::parse(R"({"metadata":{"name":"n"}})"), "AgentRun"), std::nullopt);
}

}  // namespace
}  // namespace paddock::runtime
