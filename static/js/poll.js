// Live progress without reloading the page. An element with an id and `data-poll` (a URL
// of this site) is fetched again and again, and replaced by the element of the same id in
// the answer, for as long as that element still has `data-poll`: a job, batch or training
// run that has not ended (its status fragment), a list page while one of its rows is
// queued or running (the page itself). Terminal states carry no `data-poll`: polling stops.
//
// Backoff: the first poll after FIRST ms; each answer that changed nothing (the same text)
// doubles the wait, up to MAX; an answer that changed something starts again at FIRST.
// A failed request (network, 5xx) keeps trying on the same backoff, saying "Reconnecting";
// a 429 or 503 waits at least its Retry-After. Nothing is polled while the tab is hidden;
// when it shows again, polling resumes at once, from FIRST.
//
// window.imagineerPoll = {first, max} (milliseconds) changes the timings (the browser
// tests set it before the page loads).
(function () {
  "use strict";
  var options = window.imagineerPoll || {};
  var FIRST = options.first || 1000;
  var MAX = options.max || 15000;

  function text(element) {
    return element.textContent.replace(/\s+/g, " ").trim();
  }

  function retryAfter(response) {
    var value = response.headers.get("Retry-After");
    if (!value) {
      return 0;
    }
    var seconds = Number(value);
    if (!isNaN(seconds)) {
      return seconds * 1000;
    }
    var date = Date.parse(value);  // an HTTP date
    return isNaN(date) ? 0 : Math.max(0, date - Date.now());
  }

  function Poller(element) {
    this.id = element.id;
    this.delay = FIRST;
    this.timer = null;
    this.busy = false;
    this.note = null;
  }

  Poller.prototype.element = function () {
    return document.getElementById(this.id);
  };

  Poller.prototype.schedule = function (wait) {
    var self = this;
    window.clearTimeout(this.timer);
    this.timer = null;
    var element = this.element();
    if (!element || !element.dataset.poll || document.hidden) {
      return;  // ended; or hidden: visibilitychange starts it again
    }
    element.dataset.pollWait = String(wait);  // the wait before the next poll (tests read it)
    this.timer = window.setTimeout(function () { self.poll(); }, wait);
  };

  Poller.prototype.poll = function () {
    var self = this;
    var element = this.element();
    this.timer = null;
    if (!element || !element.dataset.poll || this.busy) {
      return;
    }
    this.busy = true;
    fetch(element.dataset.poll, {
      credentials: "same-origin",
      headers: { Accept: "text/html", "X-Requested-With": "poll" },
      cache: "no-store",
    })
      .then(function (response) {
        if (!response.ok) {
          var error = new Error("status " + response.status);
          error.wait = response.status === 429 || response.status === 503
            ? retryAfter(response) : 0;
          throw error;
        }
        return response.text();
      })
      .then(function (html) {
        self.busy = false;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(self.id);
        var current = self.element();
        if (!fresh || !current) {
          throw new Error("the answer has no #" + self.id);
        }
        self.reconnected();
        if (text(fresh) !== text(current) || !fresh.dataset.poll) {
          current.replaceWith(document.adoptNode(fresh));
          self.delay = FIRST;
          document.dispatchEvent(new CustomEvent("poll:changed", { detail: { id: self.id } }));
        } else {
          self.delay = Math.min(self.delay * 2, MAX);
        }
        self.schedule(self.delay);
      })
      .catch(function (error) {
        self.busy = false;
        self.reconnecting();
        self.delay = Math.min(self.delay * 2, MAX);
        self.schedule(Math.max(self.delay, error.wait || 0));
      });
  };

  Poller.prototype.reconnecting = function () {
    var element = this.element();
    if (!element || this.note) {
      return;
    }
    this.note = document.createElement("p");
    this.note.className = "poll-note";
    this.note.setAttribute("role", "status");
    this.note.textContent = "Reconnecting…";
    element.parentNode.insertBefore(this.note, element);
  };

  Poller.prototype.reconnected = function () {
    if (this.note) {
      this.note.remove();
      this.note = null;
    }
  };

  var pollers = [];
  function watch(element) {
    var poller = new Poller(element);
    pollers.push(poller);
    poller.schedule(FIRST);
  }
  document.querySelectorAll("[data-poll][id]").forEach(watch);
  // An element put in the page later (the generate page's results, generate.js) asks to be
  // polled with a "poll:watch" event.
  document.addEventListener("poll:watch", function (event) {
    if (event.target.id && event.target.dataset.poll) {
      watch(event.target);
    }
  });

  document.addEventListener("visibilitychange", function () {
    pollers.forEach(function (poller) {
      if (document.hidden) {
        window.clearTimeout(poller.timer);
        poller.timer = null;
      } else {
        poller.delay = FIRST;
        poller.poll();
      }
    });
  });
})();
