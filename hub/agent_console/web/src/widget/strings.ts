// What the widget says, per language (the site's `language` setting picks one; English else).

export interface Strings {
  chat: string;
  you: string;
  agent: string;
  message: string;
  placeholder: string;
  attach: string;
  send: string;
  transcript: string;
  transcriptAsk: string;
  transcriptSent: string;
  notSent: string;
  reconnecting: string;
  offlineNow: string;
  leaveMessage: string;
  leftMessage: string;
  seen: string;
  endedNote: string;
  rate: string;
  comment: string;
  sendRating: string;
  pickStars: string;
  thanks: string;
  fields: { name: string; email: string; phone: string };
  joined: (name: string) => string;
  talkingTo: (name: string) => string;
  typing: (name: string) => string;
  waiting: (position: number, seconds: number | null) => string;
  stars: (n: number) => string;
}

const minutes = (seconds: number) => Math.max(1, Math.round(seconds / 60));

export const STRINGS: Record<string, Strings> = {
  en: {
    chat: "Chat",
    you: "You",
    agent: "Support",
    message: "Message",
    placeholder: "Type your message (Enter sends)",
    attach: "Attach a file",
    send: "Send",
    transcript: "Email me this conversation",
    transcriptAsk: "Your email address:",
    transcriptSent: "The conversation is on its way to your inbox.",
    notSent: "Not sent; try again.",
    reconnecting: "Reconnecting…",
    offlineNow: "Cannot reach us right now; retrying…",
    leaveMessage: "Your message; we will answer by email",
    leftMessage: "Thank you. We will answer by email.",
    seen: "Seen",
    endedNote: "The chat has ended.",
    rate: "How did we do?",
    comment: "Anything to add? (optional)",
    sendRating: "Send rating",
    pickStars: "Pick 1 to 5 stars.",
    thanks: "Thank you for your rating.",
    fields: { name: "Your name", email: "Email", phone: "Phone" },
    joined: (name) => `${name} joined the chat.`,
    talkingTo: (name) => `You are chatting with ${name}.`,
    typing: (name) => `${name} is typing…`,
    waiting: (position, seconds) =>
      `You are number ${position} in line${seconds === null ? "" : `, about ${minutes(seconds)} min`}.`,
    stars: (n) => `${n} of 5 stars`,
  },
  zh: {
    chat: "在线咨询",
    you: "您",
    agent: "客服",
    message: "消息",
    placeholder: "请输入消息（回车发送）",
    attach: "添加附件",
    send: "发送",
    transcript: "将对话发送到我的邮箱",
    transcriptAsk: "您的邮箱地址：",
    transcriptSent: "对话记录已发送到您的邮箱。",
    notSent: "发送失败，请重试。",
    reconnecting: "正在重新连接…",
    offlineNow: "暂时无法连接，正在重试…",
    leaveMessage: "请留言，我们会通过邮件回复您",
    leftMessage: "谢谢！我们会通过邮件回复您。",
    seen: "已读",
    endedNote: "对话已结束。",
    rate: "请为本次服务评分",
    comment: "其他意见（可选）",
    sendRating: "提交评分",
    pickStars: "请选择 1 到 5 星。",
    thanks: "感谢您的评价。",
    fields: { name: "您的姓名", email: "邮箱", phone: "电话" },
    joined: (name) => `${name} 已加入对话。`,
    talkingTo: (name) => `正在为您服务：${name}`,
    typing: (name) => `${name} 正在输入…`,
    waiting: (position, seconds) =>
      `您前面还有 ${position - 1} 位${seconds === null ? "" : `，预计等待约 ${minutes(seconds)} 分钟`}。`,
    stars: (n) => `${n} 星（满分 5 星）`,
  },
  es: {
    chat: "Chat",
    you: "Usted",
    agent: "Soporte",
    message: "Mensaje",
    placeholder: "Escriba su mensaje (Intro envía)",
    attach: "Adjuntar un archivo",
    send: "Enviar",
    transcript: "Enviarme esta conversación por correo",
    transcriptAsk: "Su correo electrónico:",
    transcriptSent: "La conversación va camino de su bandeja de entrada.",
    notSent: "No se envió; inténtelo de nuevo.",
    reconnecting: "Reconectando…",
    offlineNow: "No podemos conectar ahora; reintentando…",
    leaveMessage: "Su mensaje; le responderemos por correo",
    leftMessage: "Gracias. Le responderemos por correo.",
    seen: "Visto",
    endedNote: "El chat ha terminado.",
    rate: "¿Qué tal lo hicimos?",
    comment: "¿Algo más? (opcional)",
    sendRating: "Enviar valoración",
    pickStars: "Elija de 1 a 5 estrellas.",
    thanks: "Gracias por su valoración.",
    fields: { name: "Su nombre", email: "Correo", phone: "Teléfono" },
    joined: (name) => `${name} se ha unido al chat.`,
    talkingTo: (name) => `Está hablando con ${name}.`,
    typing: (name) => `${name} está escribiendo…`,
    waiting: (position, seconds) =>
      `Es el número ${position} en la cola${seconds === null ? "" : `, unos ${minutes(seconds)} min`}.`,
    stars: (n) => `${n} de 5 estrellas`,
  },
};
