package lws

import (
	"context"
	"log/slog"
	"strings"

	"github.com/lwsgate/lwsgate/cgo"
)

// routeLibraryLog sends libwebsockets' own log lines to logger. The lws log
// is process-wide: the last Context created chooses the logger.
func routeLibraryLog(logger *slog.Logger) {
	levels := cgo.LogErr | cgo.LogWarn
	if logger.Enabled(context.Background(), slog.LevelDebug) {
		levels |= cgo.LogNotice | cgo.LogInfo
	}
	cgo.SetLogLevels(levels)
	cgo.SetLogFunc(func(level int, line string) {
		// lws prefixes lines with its own timestamp and level letter.
		line = strings.TrimSpace(line)
		if i := strings.Index(line, "]"); strings.HasPrefix(line, "[") && i > 0 {
			line = strings.TrimSpace(line[i+1:])
		}
		switch {
		case level&cgo.LogErr != 0:
			logger.Error("libwebsockets: " + line)
		case level&cgo.LogWarn != 0:
			logger.Warn("libwebsockets: " + line)
		default:
			logger.Debug("libwebsockets: " + line)
		}
	})
}
