package tokens

// ValidateAssign checks an assign request as Assign does, without claiming
// anything: for callers that queue a request before they claim (the events
// layer's long-poll), so that a bad request is refused at once.
func (s *Service) ValidateAssign(req AssignRequest) error { return s.validateAssign(req) }
