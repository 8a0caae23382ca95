namespace TpLlm.Chat.Jinja;

/// <summary>How a statement list ended: normally, or by <c>break</c>/<c>continue</c> inside a loop.</summary>
internal enum Flow { Normal, Break, Continue }
