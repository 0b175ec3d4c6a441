package ref

import "testing"

func TestReply(t *testing.T) {
	for body, want := range map[string]string{
		`{"UserName":"keda","RequestId":"1614738418531"}`: `{"code":0,"token":"native-1614738418531"}`,
		`{"RequestId" : "abc"}`:                           `{"code":0,"token":"native-abc"}`,
		`{"UserName":"keda"}`:                             `{"code":0,"token":"native-0"}`,
		``:                                                `{"code":0,"token":"native-0"}`,
	} {
		if got := string(Reply([]byte(body))); got != want {
			t.Errorf("Reply(%s) = %s, want %s", body, got, want)
		}
	}
}
