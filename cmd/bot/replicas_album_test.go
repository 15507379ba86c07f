package main

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
)

// albumPart is one photo of a Telegram album (media group) in a private chat.
func albumPart(updateID, user, messageID int, group, fileID, caption string) []byte {
	extra := ""
	if caption != "" {
		extra = fmt.Sprintf(`, "caption": %q, "caption_entities": [{"type": "bot_command", "offset": 0, "length": %d}]`, caption, len(caption))
	}
	return fmt.Appendf(nil, `{"update_id": %d, "message": {"message_id": %d, "date": 1700000040,
		"from": {"id": %d, "is_bot": false, "first_name": "U%d", "language_code": "en"},
		"chat": {"id": %d, "first_name": "U%d", "type": "private"},
		"media_group_id": %q,
		"photo": [{"file_id": %q, "file_unique_id": "u%s", "width": 64, "height": 64, "file_size": 2000}]%s}}`,
		updateID, messageID, user, user, user, user, group, fileID, fileID, extra)
}

// TestReplicasAlbum: the two photos of a /swapface album, delivered by the
// load balancer to two different replicas, make one job with both photos,
// not two jobs of one photo each (the second a refusal for a missing photo).
func TestReplicasAlbum(t *testing.T) {
	rs := newReplicaSet(t, 2, "  default: {daily: 100, concurrent: 50, every: 1ms, burst: 1000}")
	defer func() {
		if t.Failed() {
			t.Log(rs.logs())
		}
	}()
	rs.fake.AddFile("ALBUM-FACE", "", smallPNG(t, 64, 64))
	rs.fake.AddFile("ALBUM-TARGET", "", smallPNG(t, 64, 64))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const user = 3701
	if err := rs.post(ctx, 0, albumPart(61001, user, 51, "24680", "ALBUM-FACE", "/swapface")); err != nil {
		t.Fatal(err)
	}
	if err := rs.post(ctx, 1, albumPart(61002, user, 52, "24680", "ALBUM-TARGET", "")); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.fake.Wait(ctx, sent("sendPhoto", "chat_id", strconv.Itoa(user))); err != nil {
		t.Fatalf("no result: %v", err)
	}
	time.Sleep(5 * time.Second) // a second job, if made, is made by now
	db := rs.open(ctx)
	js, err := db.JobsByOwner(ctx, engine.UserRef{Platform: "telegram", ID: strconv.Itoa(user)}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(js) != 1 || len(js[0].Request.Inputs) != 2 || js[0].Request.Kind != engine.KindSwapface {
		for _, j := range js {
			t.Logf("job %s kind %s inputs %d state %s", j.ID, j.Request.Kind, len(j.Request.Inputs), j.State)
		}
		t.Fatalf("%d jobs, want one swapface job with both photos", len(js))
	}
	if n := len(rs.fake.Calls("sendPhoto")); n != 1 {
		t.Errorf("%d photos posted, want 1", n)
	}
}
