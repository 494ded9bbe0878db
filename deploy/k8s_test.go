package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/tokenlease/tokenlease/internal/config"
)

// serviceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor the
// base uses; the Prometheus Operator's Go types would pull in its whole
// module, and strict decoding into this subset still catches typos.
type serviceMonitor struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace,omitempty"`
		Labels    map[string]string `json:"labels,omitempty"`
	} `json:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path,omitempty"`
			Interval string `json:"interval,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// kinds maps each apiVersion/kind the manifests may contain to its Go type.
var kinds = map[string]reflect.Type{
	"v1/Namespace":                            reflect.TypeFor[corev1.Namespace](),
	"v1/ServiceAccount":                       reflect.TypeFor[corev1.ServiceAccount](),
	"v1/ConfigMap":                            reflect.TypeFor[corev1.ConfigMap](),
	"v1/Secret":                               reflect.TypeFor[corev1.Secret](),
	"v1/Service":                              reflect.TypeFor[corev1.Service](),
	"apps/v1/Deployment":                      reflect.TypeFor[appsv1.Deployment](),
	"batch/v1/Job":                            reflect.TypeFor[batchv1.Job](),
	"policy/v1/PodDisruptionBudget":           reflect.TypeFor[policyv1.PodDisruptionBudget](),
	"autoscaling/v2/HorizontalPodAutoscaler":  reflect.TypeFor[autoscalingv2.HorizontalPodAutoscaler](),
	"networking.k8s.io/v1/NetworkPolicy":      reflect.TypeFor[networkingv1.NetworkPolicy](),
	"monitoring.coreos.com/v1/ServiceMonitor": reflect.TypeFor[serviceMonitor](),
}

// build runs kustomize on dir and decodes every object strictly (an unknown
// or misplaced field is an error) into its type, keyed by kind/name.
func build(t *testing.T, dir string) map[string]any {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	objs := map[string]any{}
	for _, r := range m.Resources() {
		key := r.GetApiVersion() + "/" + r.GetKind()
		typ, ok := kinds[key]
		if !ok {
			t.Errorf("%s: %s %s has no Go type to check it against", dir, key, r.GetName())
			continue
		}
		raw, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		obj := reflect.New(typ).Interface()
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(obj); err != nil {
			t.Errorf("%s: %s %s does not decode strictly: %v", dir, key, r.GetName(), err)
			continue
		}
		objs[r.GetKind()+"/"+r.GetName()] = obj
	}
	return objs
}

// one returns the single object of kind whose name starts with prefix
// (generated ConfigMaps and Secrets carry a hash suffix).
func one[T any](t *testing.T, objs map[string]any, kind, prefix string) *T {
	t.Helper()
	var found *T
	for key, obj := range objs {
		if strings.HasPrefix(key, kind+"/"+prefix) {
			if found != nil {
				t.Fatalf("more than one %s/%s*", kind, prefix)
			}
			found = obj.(*T)
		}
	}
	if found == nil {
		t.Fatalf("no %s/%s*", kind, prefix)
	}
	return found
}

func TestKubernetesManifestsBuildAndDecodeStrictly(t *testing.T) {
	for _, dir := range []string{"k8s/base", "k8s/overlays/example"} {
		t.Run(dir, func(t *testing.T) {
			objs := build(t, dir)
			for _, kind := range []string{"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler",
				"Job", "ConfigMap", "NetworkPolicy", "ServiceMonitor", "ServiceAccount"} {
				if !hasKind(objs, kind) {
					t.Errorf("no %s", kind)
				}
			}
			checkServer(t, objs)
		})
	}
}

func hasKind(objs map[string]any, kind string) bool {
	for k := range objs {
		if strings.HasPrefix(k, kind+"/") {
			return true
		}
	}
	return false
}

// checkServer holds the Deployment to what the issue asks of it and to the
// service's own configuration.
func checkServer(t *testing.T, objs map[string]any) {
	t.Helper()
	dep := one[appsv1.Deployment](t, objs, "Deployment", "tokenlease")
	cm := one[corev1.ConfigMap](t, objs, "ConfigMap", "tokenlease-config")
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 3 {
		t.Errorf("replicas = %v, want 3", dep.Spec.Replicas)
	}
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]

	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %+v, want GET /readyz", p)
	}
	if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe %+v, want GET /healthz", p)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["http"] != 8080 || ports["metrics"] != 9464 {
		t.Errorf("container ports %v, want http 8080 and metrics 9464", ports)
	}
	if got := cm.Data["HTTP_ADDR"]; got != ":8080" {
		t.Errorf("HTTP_ADDR %q does not match the http port", got)
	}
	if got := cm.Data["METRICS_ADDR"]; got != ":9464" {
		t.Errorf("METRICS_ADDR %q does not match the metrics port", got)
	}

	// Draining: the pod must outlive preStop plus SHUTDOWN_GRACE.
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Fatal("no preStop sleep (the image is distroless: no exec)")
	}
	grace, err := time.ParseDuration(cm.Data["SHUTDOWN_GRACE"])
	if err != nil {
		t.Fatalf("SHUTDOWN_GRACE in the ConfigMap: %v", err)
	}
	need := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds)*time.Second + grace
	if pod.TerminationGracePeriodSeconds == nil || time.Duration(*pod.TerminationGracePeriodSeconds)*time.Second <= need {
		t.Errorf("terminationGracePeriodSeconds %v does not exceed preStop + SHUTDOWN_GRACE = %s", pod.TerminationGracePeriodSeconds, need)
	}

	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container security context %+v: want a read-only root and no privilege escalation", sc)
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("pod security context %+v: want a numeric non-root user", psc)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want CPU requests (the HPA scales on them) and a memory limit", c.Resources)
	}

	secrets := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			secrets[e.Name] = e.ValueFrom.SecretKeyRef.Name
		}
		if e.Value != "" {
			t.Errorf("env %s has an inline value: settings belong in the ConfigMap, secrets in the Secret", e.Name)
		}
	}
	for _, name := range []string{"DATABASE_URL", "BOOTSTRAP_ADMIN_KEY"} {
		if !strings.HasPrefix(secrets[name], "tokenlease") {
			t.Errorf("%s is not read from the tokenlease Secret (%v)", name, secrets)
		}
	}

	job := one[batchv1.Job](t, objs, "Job", "tokenlease-migrate")
	if args := job.Spec.Template.Spec.Containers[0].Args; len(args) != 1 || args[0] != "migrate" {
		t.Errorf("migration job args %v, want [migrate]", args)
	}
	checkSettingsLoad(t, cm.Data)
}

// checkSettingsLoad makes sure every ConfigMap key is a variable tokend
// reads and that tokend accepts the values.
func checkSettingsLoad(t *testing.T, data map[string]string) {
	t.Helper()
	known := configVars()
	for k := range data {
		if !known[k] {
			t.Errorf("the ConfigMap sets %s, which tokend does not read", k)
		}
	}
	for k := range known {
		t.Setenv(k, "")
	}
	for k, v := range data {
		t.Setenv(k, v)
	}
	if _, err := config.Load(); err != nil {
		t.Errorf("tokend refuses the ConfigMap's settings: %v", err)
	}
}

// configVars lists the environment variables internal/config reads.
func configVars() map[string]bool {
	vars := map[string]bool{}
	ct := reflect.TypeFor[config.Config]()
	for i := range ct.NumField() {
		if name := ct.Field(i).Tag.Get("env"); name != "" {
			vars[name] = true
		}
	}
	return vars
}

func TestOverlaySecretIsOnlyAPlaceholder(t *testing.T) {
	objs := build(t, "k8s/overlays/example")
	s := one[corev1.Secret](t, objs, "Secret", "tokenlease")
	for k, v := range s.Data {
		if !strings.Contains(string(v), "CHANGE-ME") {
			t.Errorf("the example Secret's %s is not an obvious placeholder: %s", k, fmt.Sprintf("%.12q...", v))
		}
	}
	dep := one[appsv1.Deployment](t, objs, "Deployment", "tokenlease")
	for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
		if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil && ref.SecretKeyRef.Name != s.Name {
			t.Errorf("%s reads Secret %s, not the generated %s", e.Name, ref.SecretKeyRef.Name, s.Name)
		}
	}
}
