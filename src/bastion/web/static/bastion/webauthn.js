// WebAuthn ceremonies for forms marked data-webauthn="create" or "get".
// The server renders the options (py_webauthn JSON) into data-options; this script asks the
// authenticator, puts its JSON answer into the hidden "credential" field and submits the form.
(function () {
  "use strict";

  function toBuffer(value) {
    var base64 = value.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: toBuffer(c.id) }); });
  }

  function creationOptions(json) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    return Object.assign({}, json, {
      challenge: toBuffer(json.challenge),
      user: Object.assign({}, json.user, { id: toBuffer(json.user.id) }),
      excludeCredentials: descriptors(json.excludeCredentials)
    });
  }

  function requestOptions(json) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    return Object.assign({}, json, {
      challenge: toBuffer(json.challenge),
      allowCredentials: descriptors(json.allowCredentials)
    });
  }

  function answer(credential) {
    if (typeof credential.toJSON === "function") {
      try { return credential.toJSON(); } catch (ignored) { /* fall through */ }
    }
    var r = credential.response;
    var out = {
      id: credential.id, rawId: toBase64url(credential.rawId), type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: { clientDataJSON: toBase64url(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = toBase64url(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = toBase64url(r.authenticatorData);
      out.response.signature = toBase64url(r.signature);
      out.response.userHandle = r.userHandle ? toBase64url(r.userHandle) : null;
    }
    return out;
  }

  // The page's language, from base.html's <meta name="script-text">; English without one.
  var block = document.querySelector('meta[name="script-text"]');
  var said = block ? JSON.parse(block.content) : {};
  function text(key, english) { return said[key] || english; }

  function explain(error) {
    if (error && error.name === "NotAllowedError") {
      return text("keyCancelled", "The security key request was cancelled or timed out. Try again.");
    }
    if (error && error.name === "InvalidStateError") {
      return text("keyRegistered", "This security key is already registered to your account.");
    }
    if (error && error.name === "SecurityError") {
      return text("keyAddress", "Security keys need this site to be opened through its configured address (https, or http://localhost).");
    }
    if (error && error.message) {
      return text("keyFailedBecause", "The security key could not be used: {reason}").replace("{reason}", error.message);
    }
    return text("keyFailed", "The security key could not be used.");
  }

  function setUp(form) {
    var field = form.querySelector("input[name=credential]");
    var problem = form.querySelector("[data-webauthn-error]");
    function show(text) {
      if (problem) { problem.textContent = text; problem.hidden = false; }
    }
    if (!window.PublicKeyCredential || !navigator.credentials) {
      show(text("keyUnsupported", "This browser does not support security keys or passkeys."));
      Array.prototype.forEach.call(form.querySelectorAll("button"), function (b) { b.disabled = true; });
      return;
    }
    form.addEventListener("submit", function (event) {
      if (field.value) { return; }
      event.preventDefault();
      var json = JSON.parse(form.getAttribute("data-options"));
      var ask = form.getAttribute("data-webauthn") === "create"
        ? navigator.credentials.create({ publicKey: creationOptions(json) })
        : navigator.credentials.get({ publicKey: requestOptions(json) });
      ask.then(function (credential) {
        field.value = JSON.stringify(answer(credential));
        form.submit();
      }, function (error) { show(explain(error)); });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("form[data-webauthn]"), setUp);
})();
