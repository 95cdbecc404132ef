package mail

import (
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// htmlToText renders an HTML mail body as plain text for an agent to read:
// block elements start new lines, list items get a dash, links keep their
// target when it differs from their text, and script, style and head
// content is dropped. Entities are decoded; runs of white space collapse
// outside <pre>.
func htmlToText(src string) string {
	z := html.NewTokenizer(strings.NewReader(src))
	var (
		b       strings.Builder
		skip    int // depth inside script, style, head, ...
		pre     int
		href    string
		linkBuf int // b.Len() where the current link's text started
	)
	newline := func() {
		s := b.String()
		if len(s) > 0 && !strings.HasSuffix(s, "\n") {
			b.WriteByte('\n')
		}
	}
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return strings.TrimSpace(collapseBlankLines(strings.ReplaceAll(b.String(), " \t", "\t"))) // a cell's trailing space
		case html.TextToken:
			if skip > 0 {
				continue
			}
			text := string(z.Text())
			if pre == 0 {
				text = collapseSpace(text, b.Len() == 0 || strings.ContainsAny(b.String()[b.Len()-1:], "\n\t "))
			}
			b.WriteString(text)
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			start := tt != html.EndTagToken
			if a == atom.Body && start {
				skip = 0 // </head> is optional: <body> ends it
			}
			if skip > 0 && !skipped[a] {
				continue
			}
			switch a {
			case atom.Script, atom.Style, atom.Head, atom.Title, atom.Template, atom.Noscript:
				if tt == html.StartTagToken {
					skip++
				} else if tt == html.EndTagToken && skip > 0 {
					skip--
				}
			case atom.Pre:
				newline()
				if tt == html.StartTagToken {
					pre++
				} else if tt == html.EndTagToken && pre > 0 {
					pre--
				}
			case atom.Br:
				b.WriteByte('\n')
			case atom.Li:
				newline()
				if start {
					b.WriteString("- ")
				}
			case atom.A:
				if start {
					href, linkBuf = "", b.Len()
					for hasAttr {
						var k, v []byte
						k, v, hasAttr = z.TagAttr()
						if string(k) == "href" {
							href = string(v)
						}
					}
				} else if href != "" {
					lower := strings.ToLower(href)
					target := strings.TrimPrefix(href, "mailto:")
					if (strings.HasPrefix(lower, "http") || strings.HasPrefix(lower, "mailto:")) &&
						!strings.Contains(b.String()[linkBuf:], target) {
						b.WriteString(" <" + target + ">")
					}
					href = ""
				}
			case atom.P, atom.Div, atom.Tr, atom.Table, atom.H1, atom.H2, atom.H3, atom.H4,
				atom.H5, atom.H6, atom.Blockquote, atom.Hr, atom.Ul, atom.Ol, atom.Dl, atom.Dt,
				atom.Dd, atom.Section, atom.Article, atom.Header, atom.Footer, atom.Form,
				atom.Address, atom.Center, atom.Body:
				newline()
			case atom.Td, atom.Th:
				// Cells are apart by a tab, as a table copied as text
				// is: "Password<tab>hunter2" is a field and its value.
				if start && !strings.HasSuffix(b.String(), "\n") && b.Len() > 0 {
					b.WriteString("\t")
				}
			}
		}
	}
}

// skipped names the elements whose content is not text.
var skipped = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Head: true, atom.Title: true,
	atom.Template: true, atom.Noscript: true,
}

// collapseSpace turns every run of white space into one space, dropping a
// leading one when the output already ends in a space or line break.
func collapseSpace(s string, atBreak bool) string {
	var b strings.Builder
	space := atBreak
	for _, r := range s {
		switch r {
		case ' ', '\t', '\n', '\r', '\f', '\u00a0':
			if !space {
				b.WriteByte(' ')
				space = true
			}
		default:
			b.WriteRune(r)
			space = false
		}
	}
	return b.String()
}

// collapseBlankLines keeps at most one empty line in a row and trims
// trailing spaces from every line.
func collapseBlankLines(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	blank := 0
	for _, l := range lines {
		l = strings.TrimRight(l, " \t")
		if l == "" {
			blank++
			if blank > 1 {
				continue
			}
		} else {
			blank = 0
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
