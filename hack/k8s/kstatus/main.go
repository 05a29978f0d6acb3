// kstatus prints the kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status, the library Flux, kpt and cli-utils use
// to decide whether an applied object is reconciled) of each object it reads as JSON: one object, a JSON array,
// or a List, on stdin. Output: one JSON line per object, {"name", "status", "message"}. Used by the tests
// (test/integration/gitops/) to check Tern's status conventions against the real library; built by
// hack/build-k8s.sh into $TERN_CACHE/bin/kstatus.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kjson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		fmt.Println("kstatus checker, sigs.k8s.io/cli-utils " + moduleVersion("sigs.k8s.io/cli-utils"))
		return
	}
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading stdin: %v", err)
	}
	objects, err := decode(input)
	if err != nil {
		fail("%v", err)
	}
	out := json.NewEncoder(os.Stdout)
	for _, object := range objects {
		res, err := status.Compute(object)
		if err != nil {
			fail("%s %s: %v", object.GetKind(), object.GetName(), err)
		}
		if err := out.Encode(result{Name: object.GetName(), Status: res.Status.String(), Message: res.Message}); err != nil {
			fail("writing: %v", err)
		}
	}
}

// decode accepts one object, a JSON array of objects, or a List (kubectl get -o json).
func decode(input []byte) ([]*unstructured.Unstructured, error) {
	var raw any
	// Numbers as int64 where they are whole, as the library's accessors expect (encoding/json gives float64).
	if err := kjson.Unmarshal(input, &raw); err != nil {
		return nil, fmt.Errorf("stdin is not JSON: %v", err)
	}
	var items []any
	switch v := raw.(type) {
	case []any:
		items = v
	case map[string]any:
		if list, ok := v["items"].([]any); ok {
			items = list
		} else {
			items = []any{v}
		}
	default:
		return nil, fmt.Errorf("stdin holds neither an object nor a list")
	}
	objects := make([]*unstructured.Unstructured, 0, len(items))
	for i, item := range items {
		object, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("item %d is not an object", i)
		}
		objects = append(objects, &unstructured.Unstructured{Object: object})
	}
	return objects, nil
}

// moduleVersion is the version of a dependency this binary was built with.
func moduleVersion(path string) string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == path {
				return dep.Version
			}
		}
	}
	return "unknown"
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kstatus: "+format+"\n", args...)
	os.Exit(1)
}
