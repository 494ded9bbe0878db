package metrics

// ResetRoutes forgets every route label, so that a test which fills the
// bound does not fold the routes of the tests after it into "other".
func ResetRoutes() {
	routeHandles.Clear()
	requestHandles.Clear()
	routeCount.Store(0)
	httpRequests.Reset()
	httpDuration.Reset()
}
