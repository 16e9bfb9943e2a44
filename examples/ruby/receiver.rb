#!/usr/bin/env ruby
# frozen_string_literal: true

# A hookd webhook receiver using only Ruby's standard library.
#
#   HOOKD_WEBHOOK_SECRET=s3cret PORT=9000 ruby examples/ruby/receiver.rb
#
# It verifies X-CG-Hook-Signature, accepts each delivery id once, answers 200
# at once and handles the event afterwards in a worker thread. It prints
# "accepted <delivery> <type>" for a new delivery, "duplicate <delivery>" for
# one it has seen, and "handled <event> <type> for <org>" once the work is
# done; refused requests go to standard error.
#
# WEBrick left the standard library in Ruby 3.0, so this reads HTTP from a
# TCPServer itself (enough for hookd's requests, which always carry a
# Content-Length). In a Rack application (Rails, Sinatra) the same checks go
# in the controller: the raw body is request.raw_post or request.body.read,
# the header is request.env['HTTP_X_CG_HOOK_SIGNATURE'].

require 'json'
require 'openssl'
require 'set'
require 'socket'

SECRET = ENV.fetch('HOOKD_WEBHOOK_SECRET', '')
HOST = ENV.fetch('HOST', '127.0.0.1')
PORT = Integer(ENV.fetch('PORT', '9000'))
MAX_BODY = 1 << 20 # hookd's deliveries stay far below this

# Delivery ids already accepted. In memory, so forgotten at restart: a real
# receiver records the id in its database, in the same transaction as the
# work, under a unique constraint.
SEEN = Set.new
SEEN_LOCK = Mutex.new
WORK = Queue.new

def valid_signature?(body, header)
  expected = 'sha256=' + OpenSSL::HMAC.hexdigest('SHA256', SECRET, body)
  # secure_compare hashes both sides before a fixed-length comparison, so it
  # takes the same time wherever they differ, whatever their lengths.
  OpenSSL.secure_compare(expected, header.to_s)
end

# Reads a request line and headers; header names come back in lower case.
def read_head(conn)
  request_line = conn.gets("\r\n") or return
  headers = {}
  while (line = conn.gets("\r\n")) && line != "\r\n"
    name, value = line.split(':', 2)
    headers[name.strip.downcase] = value.to_s.strip
  end
  [request_line.split.first, headers]
end

def answer(conn, status, text)
  conn.write("HTTP/1.1 #{status}\r\nContent-Type: text/plain; charset=utf-8\r\n" \
             "Content-Length: #{text.bytesize + 1}\r\nConnection: close\r\n\r\n#{text}\n")
end

def serve(conn)
  method, headers = read_head(conn)
  return unless method
  return answer(conn, '405 Method Not Allowed', 'POST only') unless method == 'POST'

  length = headers['content-length'].to_i
  return answer(conn, '400 Bad Request', 'bad Content-Length') if length.negative?
  return answer(conn, '413 Payload Too Large', 'body too large') if length > MAX_BODY

  # The signature covers the raw bytes: verify them before parsing JSON.
  body = conn.read(length).to_s
  delivery = headers['x-cg-hook-delivery']
  unless valid_signature?(body, headers['x-cg-hook-signature'])
    warn "rejected #{delivery}: bad signature"
    return answer(conn, '401 Unauthorized', 'invalid signature')
  end
  if SEEN_LOCK.synchronize { SEEN.add?(delivery) }
    puts "accepted #{delivery} #{headers['x-cg-hook-event']}"
    WORK << body
  else
    # Still 200: the delivery did arrive, and any other answer makes hookd
    # try again.
    puts "duplicate #{delivery}"
  end
  answer(conn, '200 OK', 'ok')
rescue IOError, SystemCallError => e
  warn "connection error: #{e.message}"
ensure
  conn.close
end

# Does the work of each accepted delivery, after hookd has had its answer.
def work
  loop do
    event = JSON.parse(WORK.pop)
    # The real work goes here: open a ticket, notify a channel, ...
    # event['data'] has the shape of its type: GET /v1/event-types/{type}.
    puts "handled #{event['id']} #{event['type']} for #{event['organization_id']}"
  rescue JSON::ParserError => e
    warn "cannot decode event: #{e.message}"
  end
end

abort "set HOOKD_WEBHOOK_SECRET to the webhook's secret" if SECRET.empty?
$stdout.sync = true # one line per delivery, as it happens, even into a pipe
Thread.new { work }
server = TCPServer.new(HOST, PORT)
puts "listening on http://#{HOST}:#{server.addr[1]}"
loop { Thread.new(server.accept) { |conn| serve(conn) } }
