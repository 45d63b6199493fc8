//! The word lists freetext detection relies on.

#[rustfmt::skip]
/// Top-level domains a domain or host name must end in: the common generic TLDs, every
/// country-code TLD, and `onion`. `zip` and `mov` are left out on purpose: they are far more
/// often file extensions than domains in threat reports.
pub const TLDS: &[&str] = &[
    // generic
    "aero", "agency", "app", "arpa", "art", "asia", "bank", "bar", "best", "bet", "bid", "biz",
    "blog", "bond", "buzz", "cam", "casa", "casino", "cat", "center", "cfd", "chat", "click",
    "cloud", "club", "com", "company", "coop", "cyou", "date", "dev", "digital", "download", "edu",
    "email", "finance", "fit", "fun", "gdn", "global", "gov", "group", "guru", "help", "host",
    "icu", "info", "ink", "int", "jobs", "kim", "lat", "life", "link", "live", "loan", "lol",
    "ltd", "media", "men", "mil", "mobi", "moe", "mom", "monster", "museum", "name", "net",
    "network", "news", "ninja", "one", "onion", "online", "org", "page", "party", "pics", "post",
    "pro", "pub", "quest", "racing", "red", "rest", "review", "rocks", "run", "sbs", "science",
    "services", "shop", "site", "social", "solutions", "space", "store", "stream", "studio",
    "support", "systems", "tech", "tel", "today", "top", "trade", "travel", "uno", "vip",
    "website", "wiki", "win", "work", "world", "wtf", "xxx", "xyz", "zone",
    // country codes
    "ac", "ad", "ae", "af", "ag", "ai", "al", "am", "ao", "aq", "ar", "as", "at", "au", "aw", "ax",
    "az", "ba", "bb", "bd", "be", "bf", "bg", "bh", "bi", "bj", "bm", "bn", "bo", "br", "bs", "bt",
    "bw", "by", "bz", "ca", "cc", "cd", "cf", "cg", "ch", "ci", "ck", "cl", "cm", "cn", "co", "cr",
    "cu", "cv", "cw", "cx", "cy", "cz", "de", "dj", "dk", "dm", "do", "dz", "ec", "ee", "eg", "er",
    "es", "et", "eu", "fi", "fj", "fk", "fm", "fo", "fr", "ga", "gb", "gd", "ge", "gf", "gg", "gh",
    "gi", "gl", "gm", "gn", "gp", "gq", "gr", "gs", "gt", "gu", "gw", "gy", "hk", "hm", "hn", "hr",
    "ht", "hu", "id", "ie", "il", "im", "in", "io", "iq", "ir", "is", "it", "je", "jm", "jo", "jp",
    "ke", "kg", "kh", "ki", "km", "kn", "kp", "kr", "kw", "ky", "kz", "la", "lb", "lc", "li", "lk",
    "lr", "ls", "lt", "lu", "lv", "ly", "ma", "mc", "md", "me", "mg", "mh", "mk", "ml", "mm", "mn",
    "mo", "mp", "mq", "mr", "ms", "mt", "mu", "mv", "mw", "mx", "my", "mz", "na", "nc", "ne", "nf",
    "ng", "ni", "nl", "no", "np", "nr", "nu", "nz", "om", "pa", "pe", "pf", "pg", "ph", "pk", "pl",
    "pm", "pn", "pr", "ps", "pt", "pw", "py", "qa", "re", "ro", "rs", "ru", "rw", "sa", "sb", "sc",
    "sd", "se", "sg", "sh", "si", "sk", "sl", "sm", "sn", "so", "sr", "ss", "st", "su", "sv", "sx",
    "sy", "sz", "tc", "td", "tf", "tg", "th", "tj", "tk", "tl", "tm", "tn", "to", "tr", "tt", "tv",
    "tw", "tz", "ua", "ug", "uk", "us", "uy", "uz", "va", "vc", "ve", "vg", "vi", "vn", "vu", "wf",
    "ws", "ye", "yt", "za", "zm", "zw",
];

#[rustfmt::skip]
/// File extensions that make a dotted token a file name (when it is not a domain).
pub(super) const FILE_EXTENSIONS: &[&str] = &[
    "7z", "apk", "asp", "aspx", "bat", "bin", "cab", "chm", "cmd", "com", "cpl", "csv", "dat",
    "deb", "dll", "dmg", "doc", "docm", "docx", "drv", "elf", "eml", "exe", "gz", "hta", "htm",
    "html", "img", "iso", "jar", "jpg", "js", "jse", "jsp", "lnk", "log", "macho", "msg", "msi",
    "ocx", "one", "pdf", "php", "pif", "png", "ppt", "pptm", "pptx", "ps1", "py", "rar", "rpm",
    "rtf", "scr", "sh", "so", "sys", "tar", "tgz", "tmp", "txt", "vbe", "vbs", "wsf", "xls",
    "xlsb", "xlsm", "xlsx", "xml", "zip",
];
