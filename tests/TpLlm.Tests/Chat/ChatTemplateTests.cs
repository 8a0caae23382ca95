using TpLlm.Chat;

namespace TpLlm.Tests.Chat;

/// <summary>
/// The models' real templates rendered against the expected prompts (the formats the model cards
/// document; the conversation and several expectations follow llama.cpp's template tests, which
/// were checked against Python Jinja).
/// </summary>
public class ChatTemplateTests
{
    private static readonly ChatTurn[] Conversation =
    [
        new("system", "You are a helpful assistant"),
        new("user", "Hello"),
        new("assistant", "Hi there"),
        new("user", "Who are you"),
        new("assistant", "   I am an assistant   "),
        new("user", "Another question"),
    ];

    [Fact]
    public void Llama3_matches_the_documented_prompt()
    {
        var t = ChatTemplate.Parse(ModelTemplates.Llama3, bosToken: "<|begin_of_text|>", eosToken: "<|eot_id|>");
        Assert.Equal(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
            t.Render(Conversation));
    }

    [Fact]
    public void Llama31_puts_the_system_message_after_the_date_block()
    {
        var t = ChatTemplate.Parse(ModelTemplates.Llama31, bosToken: "<|begin_of_text|>");
        Assert.Equal(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nYou are a helpful assistant<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            t.Render(Conversation));
        Assert.Equal(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
            t.Render([new("user", " Hi ")], addGenerationPrompt: false));
    }

    [Fact]
    public void Qwen25_uses_chatml_with_a_default_system_prompt()
    {
        var t = ChatTemplate.Parse(ModelTemplates.Qwen25, eosToken: "<|im_end|>");
        Assert.Equal(
            "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n" +
            "<|im_start|>user\nWho are you<|im_end|>\n<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n<|im_start|>assistant\n",
            t.Render(Conversation));
        Assert.Equal(
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
            t.Render([new("user", "Hello")]));
    }

    [Fact]
    public void Mistral_v3_joins_the_system_prompt_to_the_last_user_message()
    {
        var t = ChatTemplate.Parse(ModelTemplates.MistralV3, bosToken: "<s>", eosToken: "</s>");
        Assert.Equal(
            "<s>[INST] Hello[/INST] Hi there</s>[INST] Who are you[/INST] I am an assistant</s>[INST] You are a helpful assistant\n\nAnother question[/INST]",
            t.Render(Conversation));
    }

    [Fact]
    public void Mistral_templates_refuse_roles_that_do_not_alternate()
    {
        var v3 = ChatTemplate.Parse(ModelTemplates.MistralV3, "tokenizer_config.json", "<s>", "</s>");
        var e = Assert.Throws<ChatTemplateException>(() => v3.Render([new("user", "a"), new("user", "b")]));
        Assert.Contains("must alternate user/assistant", e.Message);
        Assert.Contains("tokenizer_config.json", e.Message);
        var v01 = ChatTemplate.Parse(ModelTemplates.MistralV01, bosToken: "<s>", eosToken: "</s>");
        Assert.Equal("<s>[INST] Hello [/INST]Hi there</s>[INST] Who are you [/INST]", v01.Render([new("user", "Hello"), new("assistant", "Hi there"), new("user", "Who are you")]));
        Assert.Contains("Only user and assistant roles", Assert.Throws<ChatTemplateException>(() => v01.Render([new("user", "a"), new("system", "b")])).Message);
    }

    [Fact]
    public void Fallback_is_role_labelled_lines()
    {
        var t = ChatTemplate.Parse(ChatTemplate.FallbackSource);
        Assert.Equal("System: Be brief.\nUser: Hello\nAssistant:", t.Render([new("system", "Be brief."), new("user", "Hello")]));
        Assert.Equal("User: Hello\n", t.Render([new("user", "Hello")], addGenerationPrompt: false));
    }

    [Fact]
    public void Folder_without_a_template_gets_the_fallback_and_its_special_tokens()
    {
        var t = ChatTemplate.ForFolder(Paths.FortuneLlama);
        Assert.True(t.IsFallback);
        Assert.Equal("<|endoftext|>", t.EosToken);
    }

    [Fact]
    public void Folder_template_comes_from_tokenizer_config_string_or_named_list()
    {
        var dir = Paths.TempDir();
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"),
            """{"bos_token": {"content": "<s>"}, "eos_token": "</s>", "chat_template": [{"name": "tool_use", "template": "x"}, {"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"}]}""");
        var t = ChatTemplate.ForFolder(dir);
        Assert.False(t.IsFallback);
        Assert.Equal("<s>hi</s>", t.Render([new("user", "hi")]));
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """{"chat_template": 5}""");
        Assert.Contains("chat_template is a Number", Assert.Throws<ChatTemplateException>(() => ChatTemplate.ForFolder(dir)).Message);
    }
}
