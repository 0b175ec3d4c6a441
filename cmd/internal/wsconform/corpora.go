package wsconform

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
)

// The data the 12.x cases send. Autobahn sends slices of five real files
// (autobahntestsuite/testdata: Goethe's Faust I from Project Gutenberg,
// a 512x512 bitmap, a PDF, a JSON file and an HTML file); this suite
// generates data of each kind instead, the same on every run, 256 KiB
// each, so that a message of 128 KiB wraps around as Autobahn's do.
// What matters to permessage-deflate is how the data compresses: prose,
// image rows, a mix of text and already compressed streams, markup.

// corpus is one data set of the 12.x cases.
type corpus struct {
	name string // as Autobahn's report names the data set
	op   byte   // OpText or OpBinary, as Autobahn sends it
	data func() []byte
}

const corpusSize = 256 << 10

// corpora are 12.1 to 12.5's data sets, in Autobahn's order; 13.x send
// the JSON one (corpora[3]).
var corpora = []corpus{
	{"human readable text (Goethe's Faust I in Autobahn)", OpBinary, sync.OnceValue(proseCorpus)},
	{"a 512x512 greyscale bitmap", OpBinary, sync.OnceValue(bitmapCorpus)},
	{"a PDF", OpBinary, sync.OnceValue(pdfCorpus)},
	{"a JSON file", OpText, sync.OnceValue(jsonCorpus)},
	{"an HTML file", OpText, sync.OnceValue(htmlCorpus)},
}

func corpusRand(seed byte) *rand.Rand { return rand.New(rand.NewChaCha8([32]byte{seed, 12})) }

// fill appends what next writes to a builder until it holds corpusSize
// bytes, and returns exactly those.
func fill(next func(b *strings.Builder)) []byte {
	var b strings.Builder
	for b.Len() < corpusSize {
		next(&b)
	}
	return []byte(b.String()[:corpusSize])
}

var words = strings.Fields(`habe nun ach philosophie juristerei und medizin auch leider
	theologie durchaus studiert mit heissem bemuehn da steh ich nun ich armer tor bin so klug
	als wie zuvor heisse magister heisse doktor gar ziehe schon an die zehen jahr herauf herab
	und quer und krumm meine schueler an der nase herum und sehe dass wir nichts wissen koennen
	das will mir schier das herz verbrennen zwar bin ich gescheiter als alle die laffen`)

// proseCorpus is lines of verse made of a small vocabulary, as a play's
// text is: ASCII, words repeating at irregular distances.
func proseCorpus() []byte {
	r := corpusRand(1)
	return fill(func(b *strings.Builder) {
		n := 4 + r.IntN(8)
		for i := range n {
			w := words[r.IntN(len(words))]
			if i == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			b.WriteString(w)
			if i < n-1 {
				b.WriteByte(' ')
			}
		}
		b.WriteString([]string{".\n", ",\n", "!\n", ";\n"}[r.IntN(4)])
	})
}

// bitmapCorpus is 512 rows of 512 grey pixels: smooth shading with noise,
// as a photograph's rows are.
func bitmapCorpus() []byte {
	r := corpusRand(2)
	b := make([]byte, 0, corpusSize)
	for y := range 512 {
		for x := range 512 {
			v := (x*x/512 + y/2 + 40*((x/64+y/64)%3)) % 256
			b = append(b, byte(v+r.IntN(9)-4))
		}
	}
	return b
}

// pdfCorpus is PDF objects: text dictionaries, and streams of bytes that
// do not compress (as deflated content streams and images do not).
func pdfCorpus() []byte {
	r := corpusRand(3)
	obj := 1
	return fill(func(b *strings.Builder) {
		fmt.Fprintf(b, "%d 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R /Resources << /Font << /F1 4 0 R >> >> >>\nendobj\n", obj, obj+1)
		n := 200 + r.IntN(1800)
		fmt.Fprintf(b, "%d 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n", obj+1, n)
		raw := make([]byte, n)
		for i := range raw {
			raw[i] = byte(r.Uint32())
		}
		b.Write(raw)
		b.WriteString("\nendstream\nendobj\n")
		obj += 2
	})
}

// jsonCorpus is an array of records with the same keys and varied values,
// as an API's data is: ASCII text.
func jsonCorpus() []byte {
	r := corpusRand(4)
	i := 0
	b := fill(func(b *strings.Builder) {
		if i == 0 {
			b.WriteString("[\n")
		}
		fmt.Fprintf(b, `  {"id": %d, "name": "%s %s", "email": "%s%d@example.com", "active": %t, "score": %.3f, "tags": ["%s", "%s"], "address": {"street": "%d %s Street", "city": "%s", "zip": "%05d"}},`+"\n",
			i, words[r.IntN(len(words))], words[r.IntN(len(words))], words[r.IntN(len(words))], r.IntN(1000), r.IntN(2) == 1,
			r.Float64()*100, words[r.IntN(len(words))], words[r.IntN(len(words))], 1+r.IntN(999), words[r.IntN(len(words))],
			words[r.IntN(len(words))], r.IntN(100000))
		i++
	})
	return b
}

// htmlCorpus is a page of nested markup around short paragraphs: ASCII.
func htmlCorpus() []byte {
	r := corpusRand(5)
	i := 0
	return fill(func(b *strings.Builder) {
		if i == 0 {
			b.WriteString("<!DOCTYPE html>\n<html><head><title>Data</title></head><body>\n")
		}
		fmt.Fprintf(b, "<div class=\"item item-%d\" id=\"item%d\"><h2><a href=\"/items/%d\">%s %s</a></h2>\n<p>",
			i%7, i, i, words[r.IntN(len(words))], words[r.IntN(len(words))])
		for range 8 + r.IntN(20) {
			b.WriteString(words[r.IntN(len(words))] + " ")
		}
		fmt.Fprintf(b, "</p>\n<ul><li>%d</li><li>%s</li></ul></div>\n", r.IntN(10000), words[r.IntN(len(words))])
		i++
	})
}

// slice returns the n bytes of data at *pos, wrapping around its end, and
// moves *pos past them: Autobahn's sendOne.
func slice(data []byte, pos *int, n int) []byte {
	from, to := *pos, (*pos+n)%len(data)
	*pos = to
	if to > from {
		return data[from:to]
	}
	return append(append([]byte(nil), data[from:]...), data[:to]...)
}
