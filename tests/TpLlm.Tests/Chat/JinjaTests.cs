using TpLlm.Chat;

namespace TpLlm.Tests.Chat;

/// <summary>The Jinja subset against Python Jinja's behaviour (HF settings: trim_blocks, lstrip_blocks).</summary>
public class JinjaTests
{
    private static string R(string template, params ChatTurn[] messages) => ChatTemplate.Parse(template, bosToken: "<s>").Render(messages);

    [Theory]
    [InlineData("{% if true %}\nyes\n{% endif %}\n", "yes\n")]                 // trim_blocks eats the newline after a block tag
    [InlineData("  {% if true %}x{% endif %}", "x")]                           // lstrip_blocks eats spaces before a block tag
    [InlineData("a  {{- 'b' -}}  c", "abc")]
    [InlineData("a {# note #}\nb", "a b")]
    [InlineData("{{ 'x' }}\n{{ 'y' }}", "x\ny")]                              // no trimming after variables
    [InlineData("{% for i in range(3) %}{{ loop.index }}{{ '-' if not loop.last }}{% endfor %}", "1-2-3")]
    [InlineData("{% for i in [] %}x{% else %}empty{% endfor %}", "empty")]
    [InlineData("{% for i in range(10) if i is odd %}{% if i > 6 %}{% break %}{% endif %}{{ i }}{% endfor %}", "135")]
    [InlineData("{% for k, v in {'a': 1, 'b': 2} | items %}{{ k }}={{ v }};{% endfor %}", "a=1;b=2;")]
    [InlineData("{{ [1, 2, 3, 4][1:] }}{{ 'hello'[::-1] }}{{ [1,2,3][-1] }}{{ 'abc'[:-1] }}", "[2, 3, 4]olleh3ab")]
    [InlineData("{{ {'a': [1, 'x', none, true]} | tojson }}", "{\"a\": [1, \"x\", null, true]}")]
    [InlineData("{{ {'a': 1} | tojson(indent=2) }}", "{\n  \"a\": 1\n}")]
    [InlineData("{{ 7 // 2 }} {{ 7 / 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 'ab' * 2 }} {{ 1 ~ 'x' }}", "3 3.5 2 1024 abab 1x")]
    [InlineData("{{ '  x  ' | trim }}|{{ ' y '.strip() }}|{{ 'a,b'.split(',') | join('+') }}|{{ 'Ab'.upper() }}{{ 'Ab' | lower }}", "x|y|a+b|ABab")]
    [InlineData("{{ none }} {{ true }} {{ 1.0 }} {{ undefined_thing }}|", "None True 1.0 |")]
    [InlineData("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}", "1")]    // a loop's set does not leak
    [InlineData("{% set ns = namespace(x=1) %}{% for i in [1] %}{% set ns.x = 2 %}{% endfor %}{{ ns.x }}", "2")]
    [InlineData("{% macro tag(name, close=false) %}<{{ '/' if close }}{{ name }}>{% endmacro %}{{ tag('a') }}{{ tag('a', close=true) }}", "<a></a>")]
    [InlineData("{{ [{'r': 'u'}, {'r': 'a'}, {'r': 'u'}] | selectattr('r', 'equalto', 'u') | list | length }}", "2")]
    [InlineData("{{ [{'r': 'u'}, {'r': 'a'}] | map(attribute='r') | join }}", "ua")]
    [InlineData("{{ x | default('d') }}{{ '' | default('e', true) }}", "de")]
    [InlineData("{{ 'b' in 'abc' }}{{ 'z' not in ['a'] }}{{ 'k' in {'k': 1} }}", "TrueTrueTrue")]
    [InlineData("{{ 1 if x is defined else 2 }}{{ 'yes' if none is none }}", "2yes")]
    [InlineData("{% set s %}in{{ 'side' }}{% endset %}{{ s | upper }}", "INSIDE")]
    [InlineData("{{ bos_token + messages[0]['content'] + messages[0].role }}", "<s>hiuser")]
    [InlineData("{%+ if true %}x{% endif %}", "x")]
    [InlineData("{{ \"a\\nb\" }}", "a\nb")]
    public void Renders_like_python_jinja(string template, string expected) => Assert.Equal(expected, R(template, new ChatTurn("user", "hi")));

    [Theory]
    [InlineData("{% if x %}", "line 1", "missing '{% endif %}'")]
    [InlineData("a\n{{ 1 + }}", "line 2", "unexpected")]
    [InlineData("{% foo %}", "line 1", "unsupported tag 'foo'")]
    [InlineData("{{ x | nosuchfilter }}", "line 1", "unknown filter 'nosuchfilter'")]
    [InlineData("{{ 'a' + 1 }}", "line 1", "unsupported operand types for +: str and int")]
    [InlineData("{{ messages[5] }}", "line 1", "list index 5 is out of range for a list of 1")]
    [InlineData("\n\n{{ nothing.attr }}", "line 3", "'nothing' is undefined")]
    [InlineData("{{ 'unclosed }}", "line 1", "never closed")]
    [InlineData("{{ raise_exception('no system role') }}", "", "refused the conversation: no system role")]
    [InlineData("{% for i in range(100000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", "", "more than")]
    [InlineData("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "line 1", "nest deeper than 64")]
    public void Errors_name_the_line_and_the_problem(string template, string where, string what)
    {
        var e = Assert.ThrowsAny<ChatTemplateException>(() => R(template, new ChatTurn("user", "hi")));
        Assert.Contains(what, e.Message);
        Assert.Contains(where, e.Message);
    }

    [Fact]
    public void Deep_nesting_is_refused_not_a_stack_overflow()
    {
        foreach (var deep in new[] { "{{ " + new string('(', 5000) + "1" + new string(')', 5000) + " }}", string.Concat(Enumerable.Repeat("{% if true %}", 5000)), "{{ " + string.Concat(Enumerable.Repeat("-", 5000)) + "1 }}" })
            Assert.Contains("nesting deeper than 200 levels", Assert.Throws<ChatTemplateException>(() => R(deep)).Message);
    }
}
