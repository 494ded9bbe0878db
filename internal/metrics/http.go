package metrics

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// maxRoutes bounds the route label: the API has a few dozen route templates,
// so more distinct values mean a caller passed raw paths, and those are
// folded into "other" instead of growing the scrape without limit.
const maxRoutes = 128

// OtherLabel replaces a label value outside its bound.
const OtherLabel = "other"

// UnmatchedRoute labels the requests no route matched.
const UnmatchedRoute = "unmatched"

var (
	httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameHTTPRequests,
		Help: "HTTP requests answered, by route template and status code.",
	}, []string{"route", "code"})
	httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: NameHTTPDuration,
		Help: "Time to answer an HTTP request, by route template (long polls included: see the route).",
		// From a sub-millisecond claim to a long poll's whole wait.
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"route"})
)

type requestKey struct {
	route string
	code  int
}

var (
	requestHandles sync.Map // requestKey -> prometheus.Counter
	routeHandles   sync.Map // route -> prometheus.Observer
	routeCount     atomic.Int64
)

// ObserveRequest records one answered request. route is the matched route
// template (gin's FullPath, e.g. "/pools/:pool/tokens/:token"), never the raw
// path; pass "" for a request no route matched.
func ObserveRequest(route string, code int, d time.Duration) {
	if route == "" {
		route = UnmatchedRoute
	}
	obs, ok := routeHandles.Load(route)
	if !ok {
		obs, route = bindRoute(route)
	}
	obs.(prometheus.Observer).Observe(d.Seconds())
	if code < 100 || code > 599 {
		code = 0
	}
	key := requestKey{route, code}
	c, ok := requestHandles.Load(key)
	if !ok {
		label := strconv.Itoa(code)
		if code == 0 {
			label = OtherLabel
		}
		c, _ = requestHandles.LoadOrStore(key, httpRequests.WithLabelValues(route, label))
	}
	c.(prometheus.Counter).Inc()
}

// bindRoute caches the observer of a new route, or of "other" once the bound
// is reached; it returns the observer and the route label it stands for.
func bindRoute(route string) (any, string) {
	if route == UnmatchedRoute || route == OtherLabel {
		obs, _ := routeHandles.LoadOrStore(route, httpDuration.WithLabelValues(route))
		return obs, route
	}
	if routeCount.Add(1) > maxRoutes {
		routeCount.Add(-1)
		route = OtherLabel
		if obs, ok := routeHandles.Load(route); ok {
			return obs, route
		}
	}
	obs, loaded := routeHandles.LoadOrStore(route, httpDuration.WithLabelValues(route))
	if loaded {
		routeCount.Add(-1)
	}
	return obs, route
}
