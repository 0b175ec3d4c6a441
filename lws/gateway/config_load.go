package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// LoadConfig reads and checks a YAML file. Errors name the file, the line
// and the field: "gate.yaml:7: listeners[0].addr: ...".
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %v", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig parses YAML (name is used in errors) strictly: unknown
// fields, wrong types and bad values are errors. What the file leaves out
// means the default (see Config), so an empty file is DefaultConfig.
func ParseConfig(name string, data []byte) (*Config, error) {
	c, err := decodeConfig(name, data)
	if err != nil {
		return nil, err
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeConfig decodes a file as it is written, without defaults.
func decodeConfig(name string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlErr(name, err)
	}
	c := &Config{source: &sourceMap{file: name, lines: map[string]int{}}}
	if len(root.Content) == 0 {
		return c, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return nil, yamlErr(name, err)
	}
	var extra yaml.Node
	if dec.Decode(&extra) == nil {
		return nil, fmt.Errorf("%s: more than one YAML document", name)
	}
	c.source.walk("", root.Content[0])
	c.keepWrittenLists()
	return c, nil
}

// keepWrittenLists makes the lists whose nil stands for a default list
// non-nil when the file writes them out, even empty or bare ("rules:"):
// a list written replaces the default.
func (c *Config) keepWrittenLists() {
	written := func(path string) bool { _, ok := c.source.lines[path]; return ok }
	if c.Listeners == nil && written("listeners") {
		c.Listeners = []ListenerConfig{}
	}
	if c.Rules == nil && written("rules") {
		c.Rules = []RuleConfig{}
	}
	for i := range c.Listeners {
		if l := &c.Listeners[i]; l.Subprotocols == nil && written(fmt.Sprintf("listeners[%d].subprotocols", i)) {
			l.Subprotocols = []string{}
		}
	}
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// yamlErr rewrites yaml's "line N: msg" errors as "file:N: msg".
func yamlErr(name string, err error) error {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for i, m := range msgs {
		if sm := yamlLineRE.FindStringSubmatch(m); sm != nil {
			m = name + ":" + sm[1] + ": " + m[len(sm[0]):]
		} else {
			m = name + ": " + strings.TrimPrefix(m, "yaml: ")
		}
		m = strings.Replace(m, " in type gateway.", " in ", 1)
		msgs[i] = m
	}
	return errors.New(strings.Join(msgs, "\n"))
}

// sourceMap remembers the line of every field path.
type sourceMap struct {
	file  string
	lines map[string]int
}

func (s *sourceMap) walk(path string, n *yaml.Node) {
	if path != "" {
		s.lines[path] = n.Line
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			s.lines[p] = k.Line
			s.walk(p, n.Content[i+1])
		}
	case yaml.SequenceNode:
		for i, e := range n.Content {
			s.walk(fmt.Sprintf("%s[%d]", path, i), e)
		}
	}
}

// errAt formats an error about field path: "file:line: path: msg", or
// "path: msg" for a config built in code.
func (c *Config) errAt(path, format string, args ...any) error {
	msg := path + ": " + fmt.Sprintf(format, args...)
	if c.source == nil {
		return errors.New("config: " + msg)
	}
	// The field may be absent from the file (defaulted): use the nearest
	// parent that is present.
	for p := path; p != ""; {
		if line, ok := c.source.lines[p]; ok {
			return fmt.Errorf("%s:%d: %s", c.source.file, line, msg)
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return fmt.Errorf("%s: %s", c.source.file, msg)
}

// YAML returns c as YAML.
func (c *Config) YAML() []byte {
	out, err := yaml.Marshal(c)
	if err != nil {
		panic(err)
	}
	return out
}
