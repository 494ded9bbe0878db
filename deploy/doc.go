// Package deploy holds no code: it is the home of the deployment files
// (docker compose's Prometheus and Grafana files, Kubernetes manifests,
// alerting rules, the dashboard) and of the tests that keep them valid and
// consistent with the service: every manifest decodes strictly into its
// Kubernetes type after a kustomize build, the compose file loads with the
// observability profile, and every alert and dashboard query names only
// metrics the service exports. None of them needs a network or a cluster.
package deploy
