package httpapi

import (
	"github.com/gin-gonic/gin"

	"github.com/tokenlease/tokenlease/internal/events"
	"github.com/tokenlease/tokenlease/internal/tokens"
)

// lookupView is a lookup's answer: the token's value and its fingerprint
// token_fp for callers who may read values, the fingerprint alone for the
// others (readers).
type lookupView struct {
	Token string `json:"token,omitempty"`
	tokenView
	TokenFP string `json:"token_fp"`
}

func lookupViewOf(c *gin.Context, st tokens.TokenState) lookupView {
	v := lookupView{tokenView: viewOf(st), TokenFP: events.Fingerprint(st.Token)}
	if principalOf(c).Role.ReadsTokenValues() {
		v.Token = st.Token
	}
	return v
}
