using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Http;

namespace Xmpp.Server.Modules.Invites;

/// Plain server-rendered pages: one layout, one small inline style sheet, no script. Every value from outside goes
/// through E (HTML-encoded) on its way in.
public static class HtmlPage
{
    public const string Style =
        "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1b;background:#fff}"
        + "h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem}"
        + "a.button,button{display:inline-block;background:#1a5fb4;color:#fff;border:0;border-radius:.4rem;padding:.6rem 1.2rem;font-size:1rem;text-decoration:none;cursor:pointer}"
        + "a.button:focus,button:focus,input:focus{outline:3px solid #f5c211;outline-offset:2px}"
        + "label{display:block;margin-top:.8rem;font-weight:600}"
        + "input{font-size:1rem;padding:.4rem;width:100%;max-width:20rem;box-sizing:border-box;border:1px solid #555;border-radius:.3rem}"
        + ".hint{color:#444;font-size:.9rem}.error{color:#a51d2d;font-weight:600;border-left:4px solid #a51d2d;padding-left:.6rem}"
        + ".ok{border-left:4px solid #26a269;padding-left:.6rem}code{word-break:break-all}img.qr{width:12rem;height:12rem;image-rendering:pixelated}"
        + "ul.clients li{margin:.3rem 0}";

    public static string E(string? text) => HtmlEncoder.Default.Encode(text ?? "");

    public static async Task WriteAsync(HttpContext context, int status, string title, string body)
    {
        WebFormGuard.SecurityHeaders(context.Response);
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/html; charset=utf-8";
        var html = new StringBuilder()
            .Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
            .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
            .Append("<meta name=\"referrer\" content=\"same-origin\">")
            .Append("<title>").Append(E(title)).Append("</title><style>").Append(Style).Append("</style></head>")
            .Append("<body><main>").Append(body).Append("</main></body></html>");
        await context.Response.WriteAsync(html.ToString());
    }

    /// One labelled input; the hint is tied to it with aria-describedby so a screen reader reads both.
    public static string Input(string name, string label, string type, string autocomplete, string? value = null, string? hint = null, bool required = true)
    {
        var sb = new StringBuilder();
        sb.Append($"<label for=\"{name}\">{E(label)}</label>");
        sb.Append($"<input id=\"{name}\" name=\"{name}\" type=\"{type}\" autocomplete=\"{autocomplete}\"");
        if (value is not null) sb.Append($" value=\"{E(value)}\"");
        if (hint is not null) sb.Append($" aria-describedby=\"{name}-hint\"");
        if (required) sb.Append(" required");
        sb.Append('>');
        if (hint is not null) sb.Append($"<div class=\"hint\" id=\"{name}-hint\">{E(hint)}</div>");
        return sb.ToString();
    }

    public static string Error(string? message) => message is null ? "" : $"<p class=\"error\" role=\"alert\">{E(message)}</p>";
}
