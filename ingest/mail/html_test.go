package mail

import "testing"

func TestHTMLToText(t *testing.T) {
	for _, tc := range []struct {
		name, html, want string
	}{
		{"empty", "", ""},
		{"plain text", "hello world", "hello world"},
		{"entities", "caf&eacute; &amp; th&#233; &lt;b&gt; &#x20AC;5 &quot;q&quot;", `café & thé <b> €5 "q"`},
		{"non-breaking space collapses", "a&nbsp;&nbsp;b", "a b"},
		{"white space collapses", "  a \n\t b   c  ", "a b c"},
		{"br", "one<br>two<br/>three<BR />four", "one\ntwo\nthree\nfour"},
		{"paragraphs", "<p>first</p><p>second</p>third", "first\nsecond\nthird"},
		{"divs and headings", "<h1>Title</h1><div>body</div><div><div>nested</div></div>", "Title\nbody\nnested"},
		{"blank lines collapse", "a<br><br><br><br>b", "a\n\nb"},
		{"script and style dropped", "<style>p { color: red }</style>a<script>var x = '<p>no</p>';</script>b", "ab"},
		{"head and title dropped", "<html><head><title>Title</title><meta charset=utf-8></head><body>text</body></html>", "text"},
		{"unclosed head ends at body", "<html><head><meta charset=utf-8><body><p>Hello</p></body></html>", "Hello"},
		{"noscript and template dropped", "a<noscript>enable js</noscript><template><p>t</p></template>b", "ab"},
		{"link target kept", `see <a href="https://ca.example/help">our help</a>.`, "see our help <https://ca.example/help>."},
		{"link target equal to its text not repeated", `<a href="https://ca.example/">https://ca.example/</a>`, "https://ca.example/"},
		{"mailto target", `write to <a href="mailto:help@ca.example">support</a>`, "write to support <help@ca.example>"},
		{"mailto equal to text", `<a href="mailto:help@ca.example">help@ca.example</a>`, "help@ca.example"},
		{"javascript link target dropped", `<a href="javascript:alert(1)">click</a>`, "click"},
		{"relative link target dropped", `<a href="/path">here</a>`, "here"},
		{"upper-case HREF", `<A HREF="HTTP://CA.EXAMPLE/X">x</A>`, "x <HTTP://CA.EXAMPLE/X>"},
		{"list items", "<ul><li>one</li><li>two</li></ul>", "- one\n- two"},
		{"table cells", "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>", "a\tb\nc\td"},
		{"table cells with white space", "<table><tr><th> Password </th><td>\n  hunter2 </td></tr></table>", "Password\thunter2"},
		{"pre keeps white space", "<pre>  a\n    b</pre>after", "a\n    b\nafter"},
		{"comment dropped", "a<!-- secret -->b", "ab"},
		{"unclosed tags", "<p>a <b>bold<i>both", "a boldboth"},
		{"stray end tags", "</p></div>a</b>", "a"},
		{"unclosed script drops the rest", "a<script>var x", "a"},
		{"broken markup", "<<p>>a<", "<\n>a<"},
		{"trailing spaces trimmed", "<p>a   </p>  <p>  b</p>", "a\nb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := htmlToText(tc.html); got != tc.want {
				t.Errorf("htmlToText(%q) = %q, want %q", tc.html, got, tc.want)
			}
		})
	}
}
