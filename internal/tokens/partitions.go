package tokens

import (
	"context"
	"fmt"
	"time"
)

// MaintainEventPartitions creates the audit partitions for the coming days
// and drops those wholly older than retention.
func (s *Service) MaintainEventPartitions(ctx context.Context, daysAhead int, retention time.Duration) (created, dropped int, err error) {
	c, err := s.q.EnsureEventPartitions(ctx, int32(daysAhead))
	if err != nil {
		return 0, 0, fmt.Errorf("tokens: create event partitions: %w", err)
	}
	d, err := s.q.DropEventPartitions(ctx, millis(retention))
	if err != nil {
		return int(c), 0, fmt.Errorf("tokens: drop event partitions: %w", err)
	}
	return int(c), int(d), nil
}
