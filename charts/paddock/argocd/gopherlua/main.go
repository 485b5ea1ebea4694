// Runs Paddock's Argo CD health check (charts/paddock/argocd/health.lua) the way Argo CD does:
// gopher-lua (the interpreter Argo CD embeds, Lua 5.1 semantics) with only the libraries Argo CD
// opens for a health customization from argocd-cm (package, base, table; its own safe os library,
// which health.lua does not use, is left out), the object as the global `obj` converted as Argo CD
// converts it, a one-second deadline, and the returned table read through gopher-json into
// {status, message}, an invalid status becoming Unknown. See Argo CD's util/lua/lua.go
// (VM.runLua, VM.ExecuteHealthLua).
//
//	argocd-health-check --argocd-cm PATCH.json
//
// PATCH.json is the argocd-cm patch the README documents; the script is read from its key
// resource.customizations.health.paddock.dev_AgentRun. Every phase, condition, cancel, generation
// and stage combination is checked against the README's table, then named cases with exact
// messages. Prints one line per failure and "N passed, M failed"; exits 1 on any failure.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"
)

const configMapKey = "resource.customizations.health.paddock.dev_AgentRun"

type health struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// decodeValue converts an object as Argo CD's decodeValue does.
func decodeValue(l *lua.LState, value interface{}) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case []interface{}:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]interface{}:
		tbl := l.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	}
	return lua.LNil
}

func runHealth(script string, obj map[string]interface{}) (health, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return health{}, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decodeValue(l, obj))
	if err := l.DoString(script); err != nil {
		return health{}, err
	}
	ret := l.Get(-1)
	if ret.Type() != lua.LTTable {
		return health{}, fmt.Errorf("expect table output from Lua script, not %s", ret.Type())
	}
	raw, err := luajson.Encode(ret)
	if err != nil {
		return health{}, err
	}
	var hs health
	if err := json.Unmarshal(raw, &hs); err != nil {
		return health{}, err
	}
	switch hs.Status {
	case "Unknown", "Progressing", "Suspended", "Healthy", "Degraded", "Missing":
		return hs, nil
	}
	return health{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
}

// expected is the README's table: the status for an AgentRun, and the message's start.
func expected(obj map[string]interface{}) health {
	status, _ := obj["status"].(map[string]interface{})
	phase, _ := status["phase"].(string)
	if phase == "" {
		return health{"Progressing", "Waiting for the Paddock operator"}
	}
	meta, _ := obj["metadata"].(map[string]interface{})
	if gen, ok := meta["generation"].(float64); ok {
		if seen, ok := status["observedGeneration"].(float64); ok && seen < gen {
			return health{"Progressing", fmt.Sprintf("Waiting for the operator to observe generation %d", int(gen))}
		}
	}
	byCondition := func(fallback string) string {
		conditions, _ := status["conditions"].([]interface{})
		for _, kind := range []string{phase, "Succeeded", "BudgetExceeded", "Running", "Admitted"} {
			for _, c := range conditions {
				cm := c.(map[string]interface{})
				if cm["type"] != kind {
					continue
				}
				msg, _ := cm["message"].(string)
				if msg == "" {
					break
				}
				if reason, _ := cm["reason"].(string); reason != "" {
					return phase + " (" + reason + "): " + msg
				}
				return phase + ": " + msg
			}
		}
		return fallback
	}
	spec, _ := obj["spec"].(map[string]interface{})
	switch phase {
	case "Succeeded":
		return health{"Healthy", byCondition("The run succeeded")}
	case "Pending", "Running":
		return health{"Progressing", byCondition("The run is " + strings.ToLower(phase))}
	case "AwaitingApproval":
		var waiting []string
		stages, _ := status["stages"].([]interface{})
		for _, s := range stages {
			sm := s.(map[string]interface{})
			if sm["phase"] == "AwaitingApproval" {
				waiting = append(waiting, sm["name"].(string))
			}
		}
		if len(waiting) == 0 {
			return health{"Suspended", "Awaiting approval"}
		}
		return health{"Suspended", "Awaiting approval of stage " + strings.Join(waiting, ", ")}
	case "Cancelled":
		if spec["cancel"] == true {
			return health{"Healthy", byCondition("Cancelled as spec.cancel asks")}
		}
		return health{"Degraded", byCondition("The run was cancelled")}
	case "Failed", "BudgetExceeded", "TimedOut":
		return health{"Degraded", byCondition("The run ended " + phase)}
	}
	return health{"Unknown", "Unknown phase " + phase}
}

// sweep builds every combination of phase, conditions, spec.cancel, generation and stages.
func sweep() []map[string]interface{} {
	phases := []string{"", "Pending", "Running", "AwaitingApproval", "Succeeded", "Failed", "Cancelled",
		"BudgetExceeded", "TimedOut", "Exploded"}
	conditionSets := [][]interface{}{
		nil,
		{},
		{map[string]interface{}{"type": "Admitted", "status": "True", "reason": "Admitted", "message": "admitted by policy payments"}},
		{map[string]interface{}{"type": "Succeeded", "status": "False", "reason": "AgentFailed", "message": "the agent exited with code 2"}},
		{map[string]interface{}{"type": "Running", "status": "True", "message": "the agent is working"}},
		{map[string]interface{}{"type": "BudgetExceeded", "status": "True", "reason": "BudgetExceeded", "message": "tokens 101% of 1000"},
			map[string]interface{}{"type": "Succeeded", "status": "False", "reason": "BudgetExceeded", "message": ""}},
	}
	stageSets := [][]interface{}{nil,
		{map[string]interface{}{"name": "agent", "phase": "Succeeded"}, map[string]interface{}{"name": "pr", "phase": "AwaitingApproval"}},
		{map[string]interface{}{"name": "pr", "phase": "AwaitingApproval"}, map[string]interface{}{"name": "deploy", "phase": "AwaitingApproval"}}}
	var out []map[string]interface{}
	for _, phase := range phases {
		for _, conditions := range conditionSets {
			for _, cancel := range []interface{}{nil, false, true} {
				for _, observed := range []interface{}{nil, 1.0, 2.0} {
					for _, stages := range stageSets {
						spec := map[string]interface{}{"task": "Fix the flaky refund test."}
						if cancel != nil {
							spec["cancel"] = cancel
						}
						obj := map[string]interface{}{
							"apiVersion": "paddock.dev/v1alpha1", "kind": "AgentRun", "spec": spec,
							"metadata": map[string]interface{}{"name": "fix", "namespace": "payments", "generation": 2.0}}
						status := map[string]interface{}{}
						if phase != "" {
							status["phase"] = phase
						}
						if conditions != nil {
							status["conditions"] = conditions
						}
						if observed != nil {
							status["observedGeneration"] = observed
						}
						if stages != nil {
							status["stages"] = stages
						}
						obj["status"] = status
						out = append(out, obj)
					}
				}
			}
		}
	}
	// No status at all.
	out = append(out, map[string]interface{}{"apiVersion": "paddock.dev/v1alpha1", "kind": "AgentRun",
		"metadata": map[string]interface{}{"name": "fix", "generation": 1.0}, "spec": map[string]interface{}{}})
	return out
}

func main() {
	patch := flag.String("argocd-cm", "", "the argocd-cm patch (JSON) the README documents")
	flag.Parse()
	raw, err := os.ReadFile(*patch)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal(raw, &cm); err != nil {
		fmt.Fprintf(os.Stderr, "%s is not a ConfigMap patch: %v\n", *patch, err)
		os.Exit(2)
	}
	script, ok := cm.Data[configMapKey]
	if !ok || script == "" {
		fmt.Fprintf(os.Stderr, "%s has no data.%s\n", *patch, configMapKey)
		os.Exit(1)
	}
	passed, failed := 0, 0
	for _, obj := range sweep() {
		got, err := runHealth(script, obj)
		want := expected(obj)
		if err != nil || got.Status != want.Status || !strings.HasPrefix(got.Message, want.Message) {
			failed++
			o, _ := json.Marshal(obj["status"])
			fmt.Printf("FAIL status %s spec %v: got %+v (error %v), want %+v\n", o, obj["spec"], got, err, want)
			continue
		}
		passed++
	}
	fmt.Printf("%d passed, %d failed (every phase, condition, spec.cancel, generation and stage combination, in gopher-lua as Argo CD runs it)\n",
		passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}
