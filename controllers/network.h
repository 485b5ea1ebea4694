// The team's NetworkPolicy: one per policy and namespace (planNetworkPolicy in plan.h), written
// before any pod of the team's runs and put back when it goes missing or drifts. Its reconcile
// step, planNetwork, and the pure test of whether it must be written are declared in
// controllers/reconcile.h with the other steps.
#pragma once

#include "controllers/reconcile.h"
